"""Data a team can trust (issue 11), through the whole pipeline: collector → enricher → crm-core, in this process
(aiohttp test servers) on the real broker and database, wired by this test's topics.

- a form value with a NUL character is kept without it, not lost between the collector's 200 and PostgreSQL;
- an identifier the identity graph refused to a person (it belongs to another it would not merge) never lands
  on that person in the CRM;
- bots and link scanners stay on the timeline but never score and never move a stage;
- Segment's reserved traits fill the person.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from leadline_collector.app import create_app as create_collector
from leadline_collector.settings import CollectorSettings
from leadline_crm.app import create_app as create_crm
from leadline_crm.settings import CrmSettings
from leadline_enricher.app import create_app as create_enricher
from leadline_enricher.settings import EnricherSettings
from leadline_shared import config, kafka
from leadline_shared.events import RawEvent, utc_now_iso
from leadline_shared.ids import new_id
from sites import DEMO_FORM, LINK_KEYS, SOURCE, publish_config

pytestmark = pytest.mark.integration

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
ORIGIN = {"Origin": "https://www.shop.example", "User-Agent": BROWSER}


@dataclass
class Pipeline:
    collector: TestClient
    bootstrap: str
    topics: kafka.Topics
    crm: asyncpg.Connection

    async def raw(self, *events: RawEvent) -> None:
        """Events on capture.raw.v1, as the collector writes them."""
        producer = kafka.producer(self.bootstrap)
        await producer.start()
        try:
            for event in events:
                await producer.send_and_wait(self.topics.raw, event.to_json(), key=event.key())
        finally:
            await producer.stop()

    async def person_with(self, email: str) -> asyncpg.Record | None:
        return await self.crm.fetchrow("SELECT * FROM persons WHERE $1 = ANY(emails)", email)

    async def person(self, person_id: Any) -> asyncpg.Record:
        return await self.crm.fetchrow("SELECT * FROM persons WHERE person_id = $1", person_id)


@pytest.fixture
async def pipeline(
    kafka_bootstrap: str, pg_dsn: str, schema: str, run_id: str, topics: kafka.Topics, tmp_path: Path
) -> AsyncIterator[Pipeline]:
    await publish_config(kafka_bootstrap, topics.config, [DEMO_FORM, SOURCE])
    common = {
        "LEADLINE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "LEADLINE_TOPIC_PREFIX": f"test-{run_id}.",
        "LEADLINE_PG_DSN": pg_dsn,
    }
    identity_schema = f"{schema}_id"
    collector_env = common | {"LEADLINE_SPOOL_DIR": str(tmp_path / "spool"), "LEADLINE_LINK_KEYS": LINK_KEYS}
    enricher_env = common | {
        "LEADLINE_IDENTITY_SCHEMA": identity_schema,
        "LEADLINE_ENRICHER_GROUP": f"enricher-{run_id}",
        "LEADLINE_INSTANCE_ID": "test",
    }
    crm_env = common | {"LEADLINE_CRM_SCHEMA": schema, "LEADLINE_CRM_GROUP": f"crm-{run_id}"}
    try:
        async with (
            TestClient(TestServer(create_enricher(config.load(EnricherSettings, enricher_env)))),
            TestClient(TestServer(create_crm(config.load(CrmSettings, crm_env)))),
            TestClient(
                TestServer(create_collector(config.load(CollectorSettings, collector_env)))
            ) as collector,
        ):
            conn = await asyncpg.connect(pg_dsn, server_settings={"search_path": schema})
            try:
                yield Pipeline(collector, kafka_bootstrap, topics, conn)
            finally:
                await conn.close()
    finally:
        conn = await asyncpg.connect(pg_dsn)
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {identity_schema} CASCADE")
        finally:
            await conn.close()


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 30.0) -> Any:
    """The first truthy answer of ``check`` (the pipeline is asynchronous); fail naming ``what`` otherwise."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if result := await check():
            return result
        await asyncio.sleep(0.2)
    pytest.fail(f"{what}: not within {timeout}s")


def raw(anon_id: str, type: str = "page_view", source: str = "pixel", **kw: Any) -> RawEvent:
    kw.setdefault("context", {"url": "https://www.shop.example/", "user_agent": BROWSER})
    return RawEvent(
        event_id=new_id(), type=type, source=source, received_at=utc_now_iso(), anon_id=anon_id, **kw
    )


def form(anon_id: str, **fields: str) -> RawEvent:
    """A web form submission as the collector writes it (contact identifiers among the ids)."""
    return raw(
        anon_id,
        "form_submit",
        "form",
        ids={k: fields[k] for k in ("email", "phone") if k in fields},
        form={"key": "demo", "fields": fields},
    )


async def test_a_form_value_with_a_nul_character_reaches_the_person_without_it(pipeline: Pipeline) -> None:
    data = {"email": "nul@example.com", "name": "Ada\x00 Lovelace", "company": "Analytical\x00 Engines"}
    resp = await pipeline.collector.post("/f/demo", data=data, headers=ORIGIN, allow_redirects=False)
    assert resp.status == 303
    person = await eventually(lambda: pipeline.person_with("nul@example.com"), "the lead in crm-core")
    assert (person["first_name"], person["last_name"]) == ("Ada", "Lovelace")
    assert person["company"] == "Analytical Engines"
    assert person["stage"] == "lead"


async def test_a_phone_the_graph_refused_never_lands_on_the_other_person(pipeline: Pipeline) -> None:
    """Ann holds the phone; Bob, who holds another email, sends it too. The graph records a conflict and keeps
    them apart (both hold an email): the phone stays Ann's alone, in the graph and in the CRM."""
    phone = "+14155550177"
    await pipeline.raw(form("ann-cookie", email="ann@example.com", phone=phone))
    await pipeline.raw(form("bob-cookie", email="bob@example.com"))
    ann = await eventually(lambda: pipeline.person_with("ann@example.com"), "Ann in crm-core")
    bob = await eventually(lambda: pipeline.person_with("bob@example.com"), "Bob in crm-core")
    both = form("bob-cookie", email="bob@example.com", phone=phone, name="Bob Jones")
    await pipeline.raw(both)
    stored = "SELECT person_id FROM touchpoints WHERE event_id = $1"
    assert (
        await eventually(lambda: pipeline.crm.fetchval(stored, both.event_id), "the event")
        == bob["person_id"]
    )
    bob = await pipeline.person(bob["person_id"])
    assert bob["phones"] == []
    assert bob["first_name"] == "Bob"  # the rest of what Bob typed is his
    holders = await pipeline.crm.fetchval("SELECT count(*) FROM persons WHERE $1 = ANY(phones)", phone)
    assert holders == 1
    assert (await pipeline.person(ann["person_id"]))["phones"] == [phone]


async def test_googlebot_and_a_link_scanner_stay_on_the_timeline_but_neither_score_nor_move_a_stage(
    pipeline: Pipeline,
) -> None:
    """Four Googlebot views of the pricing page used to add 40 and make a prospect; scanner clicks added more."""
    lead = form("gb-cookie", email="gb@example.com")
    await pipeline.raw(lead)
    person = await eventually(lambda: pipeline.person_with("gb@example.com"), "the lead in crm-core")
    bot = {"url": "https://www.shop.example/pricing", "user_agent": GOOGLEBOT}
    sent = utc_now_iso()  # the email went out just now: a click within seconds is its gateway's scanner
    link = {"campaign_id": "c1", "send_id": "s1", "target": "https://www.shop.example/", "sent_at": sent}
    noise = [raw("gb-cookie", context=bot) for _ in range(4)]
    noise += [raw("gb-cookie", "link_click", "link", link=link) for _ in range(4)]
    await pipeline.raw(*noise)
    count = "SELECT count(*) FROM touchpoints WHERE person_id = $1"

    async def all_eight() -> bool:
        return await pipeline.crm.fetchval(count + " AND automated", person["person_id"]) == 8

    await eventually(all_eight, "the bot's and the scanner's events in crm-core")
    p = await pipeline.person(person["person_id"])
    assert p["score"] == pytest.approx(20, rel=1e-3)  # the form, nothing else
    assert (p["stage"], p["clicked"], p["visit_days"]) == ("lead", False, 0)
    assert await pipeline.crm.fetchval(count, person["person_id"]) == 9  # all on the timeline


async def test_segments_reserved_traits_fill_the_person(pipeline: Pipeline) -> None:
    """An identify call from a Segment SDK, through the collector's /v1/identify: its reserved traits
    (camelCase, company and address nested) become the person's name, company and place."""
    call = {
        "userId": "u-77",
        "anonymousId": "seg-cookie",
        "traits": {
            "firstName": "Grace",
            "lastName": "Hopper",
            "email": "Grace@Example.com",
            "phone": "+1 415 555 0199",
            "title": "Rear Admiral",
            "company": {"name": "Navy Labs", "industry": "defense", "employee_count": 250},
            "address": {
                "street": "1 Navy Pentagon",
                "city": "Arlington",
                "postalCode": "20350",
                "state": "VA",
                "country": "US",
            },
            "gender": "female",
        },
    }
    key = base64.b64encode(f"{SOURCE.write_key}:".encode()).decode()
    resp = await pipeline.collector.post("/v1/identify", json=call, headers={"Authorization": f"Basic {key}"})
    assert resp.status == 200, await resp.text()
    p = await eventually(lambda: pipeline.person_with("grace@example.com"), "the identified person")
    assert (p["first_name"], p["last_name"]) == ("Grace", "Hopper")
    assert (p["company"], p["industry"], p["company_size"]) == ("Navy Labs", "defense", "250")
    assert (p["country"], p["region"]) == ("US", "VA")
    assert (p["title"], p["street"], p["city"], p["postal_code"], p["gender"]) == (
        "Rear Admiral",
        "1 Navy Pentagon",
        "Arlington",
        "20350",
        "female",
    )
    assert (p["phones"], p["user_ids"], p["stage"], p["source"]) == (
        ["+14155550199"],
        ["u-77"],
        "lead",
        "segment",
    )
