"""The enricher service on the real broker and database: raw in, enriched out (exactly once), poison to the DLQ."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from enricher.geo_db import build_db
from leadline_enricher.app import MIGRATIONS, create_app
from leadline_enricher.enrich import EventEnricher
from leadline_enricher.identifiers import IdentifierRules, identifiers_of
from leadline_enricher.identity import BatchResult, IdentityGraph, Work
from leadline_enricher.pipeline import _Decoded
from leadline_enricher.settings import EnricherSettings
from leadline_shared import cli, config, kafka, pg
from leadline_shared.events import EnrichedEvent, IdentityChange, RawEvent, utc_now_iso
from leadline_shared.ids import new_id
from support import produce, read_topic, topic_is_quiet

pytestmark = pytest.mark.integration


@pytest.fixture
def env(kafka_bootstrap: str, pg_dsn: str, schema: str, run_id: str, tmp_path: Path) -> dict[str, str]:
    """The enricher's settings for this test (also what ``leadline erase`` and ``dlq replay`` read)."""
    return {
        "LEADLINE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "LEADLINE_TOPIC_PREFIX": f"test-{run_id}.",
        "LEADLINE_PG_DSN": pg_dsn,
        "LEADLINE_IDENTITY_SCHEMA": schema,
        "LEADLINE_ENRICHER_GROUP": f"enricher-{run_id}",
        "LEADLINE_INSTANCE_ID": "test",
        "LEADLINE_GEOIP_DB": str(build_db(tmp_path / "geo.mmdb")),
    }


@pytest.fixture
async def enricher(env: dict[str, str], topics: kafka.Topics) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(config.load(EnricherSettings, env)))) as c:
        yield c


BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"


def raw(anon_id: str, **ids: str) -> RawEvent:
    return RawEvent(
        event_id=new_id(),
        type="page_view",
        source="pixel",
        received_at=utc_now_iso(),
        anon_id=anon_id,
        ids=ids,
        context={"url": "https://shop.example/", "user_agent": BROWSER},
    )


async def test_raw_events_come_out_enriched_once_each_keyed_by_person(
    enricher: TestClient, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    events = [raw("v1"), raw("v1"), raw("v2"), raw("v1", email="a@example.com")]
    await produce(kafka_bootstrap, topics.raw, [(e.key(), e.to_json()) for e in events])
    out = [
        (k, EnrichedEvent.from_json(v)) for k, v, _ in await read_topic(kafka_bootstrap, topics.enriched, 4)
    ]
    assert sorted(e.event_id for _, e in out) == sorted(e.event_id for e in events)
    by_anon = {e.anon_id: e.person_id for _, e in out}
    assert all(k == e.person_id.encode() for k, e in out)
    assert len({e.person_id for _, e in out if e.anon_id == "v1"}) == 1
    assert by_anon["v1"] != by_anon["v2"]
    assert await topic_is_quiet(kafka_bootstrap, topics.enriched, 4) == 4
    assert (await enricher.get("/readyz")).status == 200


async def test_poison_message_goes_to_the_dlq_and_the_partition_moves_on(
    enricher: TestClient, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    good = raw("v9")
    bad = orjson.dumps({"event_id": "x", "type": "explode", "source": "pixel", "received_at": utc_now_iso()})
    await produce(kafka_bootstrap, topics.raw, [(b"v9", b"{not json"), (b"v9", bad), (b"v9", good.to_json())])
    [(_, value, _)] = await read_topic(kafka_bootstrap, topics.enriched, 1)
    assert EnrichedEvent.from_json(value).event_id == good.event_id
    dead = await read_topic(kafka_bootstrap, topics.dlq, 2)
    assert [v for _, v, _ in dead] == [b"{not json", bad]
    headers = dead[1][2]
    assert headers["stage"] == b"decode"
    assert headers["service"] == b"enricher"
    assert b"unknown event type" in headers["reason"]
    metrics = await (await enricher.get("/metrics")).text()
    assert 'leadline_enricher_dead_letters_total{reason="invalid"} 2.0' in metrics


async def enriched_by_id(bootstrap: str, topic: str, count: int) -> dict[str, EnrichedEvent]:
    return {
        e.event_id: e
        for e in (EnrichedEvent.from_json(v) for _, v, _ in await read_topic(bootstrap, topic, count))
    }


async def test_enrichment_reaches_the_enriched_topic(
    enricher: TestClient, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    """Agent, bot marks, traffic class, campaign, geography and consent-truncated IP all travel with the event."""
    human = raw("h1")
    human.context.update(
        ip="81.2.69.160",
        referrer="https://www.google.com/",
        consent={"dnt": True, "gpc": False},
        campaign={"source": "google", "medium": "cpc"},
        click_ids={"gclid": "G-1"},
    )
    bot = raw("b1", email="victim@example.com")
    bot.context.update(user_agent="Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")
    await produce(kafka_bootstrap, topics.raw, [(e.key(), e.to_json()) for e in (human, bot)])
    out = await enriched_by_id(kafka_bootstrap, topics.enriched, 2)
    h = out[human.event_id]
    assert h.ua is not None
    assert h.ua["browser"] == "Firefox"
    assert h.bot == {"is_bot": False, "indicators": []}
    assert h.referrer_class == "paid"
    assert h.campaign == {"source": "google", "medium": "cpc", "click_id_type": "gclid", "click_id": "G-1"}
    assert h.geo == {"country": "GB", "region": "ENG", "city": "London"}
    assert h.context["ip"] == "81.2.69.0"
    b = out[bot.event_id]
    assert b.bot is not None
    assert b.bot["is_bot"] is True
    assert "crawler_list" in b.bot["indicators"]
    # kept in the stream, but the bot's email did not become anyone's identifier
    identify = raw("h2", email="victim@example.com")
    await produce(kafka_bootstrap, topics.raw, [(identify.key(), identify.to_json())])
    later = await enriched_by_id(kafka_bootstrap, topics.enriched, 3)
    assert later[identify.event_id].person_id != b.person_id


async def test_late_identity_merge_is_published_with_the_events(
    enricher: TestClient, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    """A cookie that later fills a form with a known email joins that person; crm-core gets the merge."""
    steps = [raw("desk", email="kim@example.com"), raw("mobile"), raw("mobile", email="Kim@Example.com")]
    for i, event in enumerate(steps, start=1):
        await produce(kafka_bootstrap, topics.raw, [(event.key(), event.to_json())])
        await read_topic(kafka_bootstrap, topics.enriched, i)
    out = await enriched_by_id(kafka_bootstrap, topics.enriched, 3)
    known, anonymous = out[steps[0].event_id].person_id, out[steps[1].event_id].person_id
    assert known != anonymous
    assert out[steps[2].event_id].person_id == known
    [(key, value, _)] = await read_topic(kafka_bootstrap, topics.identity_changes, 1)
    change = IdentityChange.from_json(value)
    assert (change.kind, change.person_id, change.merged, key) == (
        "merge",
        known,
        [anonymous],
        known.encode(),
    )


async def test_a_new_email_on_a_known_person_is_announced_as_a_link(
    enricher: TestClient, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    """An anonymous visitor fills a form with a new email: no merge, but crm-core is told the person now has it."""
    steps = [raw("lap"), raw("lap", email="Lee@Example.com", phone="+14155552671")]
    for i, event in enumerate(steps, start=1):
        await produce(kafka_bootstrap, topics.raw, [(event.key(), event.to_json())])
        await read_topic(kafka_bootstrap, topics.enriched, i)
    out = await enriched_by_id(kafka_bootstrap, topics.enriched, 2)
    person = out[steps[0].event_id].person_id
    assert out[steps[1].event_id].person_id == person
    changes = [
        IdentityChange.from_json(v)
        for _, v, _ in await read_topic(kafka_bootstrap, topics.identity_changes, 2)
    ]
    assert {(c.kind, c.person_id) for c in changes} == {("link", person)}
    assert sorted((c.identifier or {}).get("type", "") for c in changes) == ["email", "phone"]
    assert {(c.identifier or {}).get("value") for c in changes} == {None}  # no values on a kept-forever topic
    assert await topic_is_quiet(kafka_bootstrap, topics.identity_changes, 2, wait=1.0) == 2


async def test_a_link_whose_kafka_transaction_was_lost_is_published_at_the_next_start(
    env: dict[str, str], kafka_bootstrap: str, topics: kafka.Topics, pg_dsn: str, schema: str
) -> None:
    """The graph committed a new email on a known person, then the process died before its Kafka transaction:
    the next enricher to start publishes the link from the outbox."""
    settings = config.load(EnricherSettings, env)
    await pg.migrate(pg_dsn, schema, MIGRATIONS)
    graph = IdentityGraph(IdentifierRules.create((), {}))
    pool = await pg.create_pool(pg_dsn, schema, max_size=2)
    try:
        persons = []
        for event in (raw("lap"), raw("lap", email="Lee@Example.com")):
            async with pool.acquire() as conn, conn.transaction():
                result = await graph.resolve_batch(
                    conn, [Work(identifiers_of(event, graph.rules), True, event.event_id)]
                )
            persons.append(result.persons[0])
    finally:
        await pool.close()
    assert persons[0] == persons[1]
    async with TestClient(TestServer(create_app(settings))):
        [(key, value, _)] = await read_topic(kafka_bootstrap, topics.identity_changes, 1)
    change = IdentityChange.from_json(value)
    assert (change.kind, change.person_id, key) == ("link", persons[0], persons[0].encode())
    assert change.identifier == {"type": "email"}


async def test_dlq_replay_sends_dead_letters_back_after_a_fix(
    enricher: TestClient,
    kafka_bootstrap: str,
    topics: kafka.Topics,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`leadline dlq replay --from-offset N` re-publishes dead letters; the enricher takes them again."""
    bad = orjson.dumps({"event_id": "x", "type": "explode", "source": "pixel", "received_at": utc_now_iso()})
    await produce(kafka_bootstrap, topics.raw, [(b"k", bad)])
    await read_topic(kafka_bootstrap, topics.dlq, 1)
    fixed = raw(
        "fixed-visitor"
    )  # as if an operator had repaired the letter (or the enricher learned the type)
    await produce(kafka_bootstrap, topics.dlq, [(fixed.key(), fixed.to_json())])
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert await asyncio.to_thread(cli.main, ["dlq", "replay", "--from-offset", "1"]) == 0
    [(_, value, _)] = await read_topic(kafka_bootstrap, topics.enriched, 1)
    assert EnrichedEvent.from_json(value).event_id == fixed.event_id
    assert await topic_is_quiet(kafka_bootstrap, topics.dlq, 2, wait=1.0) == 2  # nothing replayed twice


async def test_erase_command_tombstones_a_person_and_announces_it(
    enricher: TestClient,
    kafka_bootstrap: str,
    topics: kafka.Topics,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`leadline erase --email`: an erase change for crm-core, and the cookie never leads back to the person."""
    first = raw("gone-cookie", email="gone@example.com")
    await produce(kafka_bootstrap, topics.raw, [(first.key(), first.to_json())])
    [(_, value, _)] = await read_topic(kafka_bootstrap, topics.enriched, 1)
    person = EnrichedEvent.from_json(value).person_id
    for name, val in env.items():
        monkeypatch.setenv(name, val)
    assert await asyncio.to_thread(cli.main, ["erase", "--email", "GONE@example.com"]) == 0
    [(_, value, _)] = await read_topic(kafka_bootstrap, topics.identity_changes, 1)
    change = IdentityChange.from_json(value)
    assert (change.kind, change.person_id) == ("erase", person)
    await asyncio.sleep(1.5)  # the running enricher hears of it on identity.changes.v1
    later = raw("gone-cookie")
    await produce(kafka_bootstrap, topics.raw, [(later.key(), later.to_json())])
    out = await enriched_by_id(kafka_bootstrap, topics.enriched, 2)
    assert out[later.event_id].person_id != person


def test_the_enriched_wire_form_is_what_enriched_event_would_encode() -> None:
    """The pipeline encodes from the decoded document for speed; crm-core must read exactly the envelope."""
    event = raw("v1", email="a@example.com")
    event.extra["future_field"] = {"kept": True}
    event.context.update(ip="81.2.69.160", consent={"dnt": True}, referrer="https://t.co/x")
    findings = EventEnricher().enrich(RawEvent.from_json(event.to_json()))
    doc = orjson.loads(event.to_json())
    reference = EnrichedEvent.from_raw(
        RawEvent.from_dict(orjson.loads(event.to_json())), "p-1", **findings.fields
    )
    reference.context["ip"] = "81.2.69.0"
    decoded = _Decoded(doc, findings.fields, Work([]))
    doc["context"]["ip"] = "81.2.69.0"
    assert orjson.loads(decoded.enriched("p-1")) == reference.to_dict()
    assert EnrichedEvent.from_json(decoded.enriched("p-1")).extra == {"future_field": {"kept": True}}


async def test_a_database_outage_holds_the_batch_until_postgresql_answers(
    kafka_bootstrap: str, topics: kafka.Topics, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the identity store is unreachable the batch is retried, not skipped and not dead-lettered."""
    real = IdentityGraph.resolve_batch
    failures = iter(
        [ConnectionResetError("PostgreSQL went away"), asyncpg.CannotConnectNowError("starting up")]
    )

    async def flaky(self: IdentityGraph, conn: asyncpg.Connection, work: list[Work]) -> BatchResult:
        if (exc := next(failures, None)) is not None:
            raise exc
        return await real(self, conn, work)

    monkeypatch.setattr(IdentityGraph, "resolve_batch", flaky)
    async with TestClient(TestServer(create_app(config.load(EnricherSettings, env)))) as client:
        event = raw("outage-visitor")
        await produce(kafka_bootstrap, topics.raw, [(event.key(), event.to_json())])
        [(_, value, _)] = await read_topic(kafka_bootstrap, topics.enriched, 1)
        assert EnrichedEvent.from_json(value).event_id == event.event_id
        metrics = await (await client.get("/metrics")).text()
    assert "leadline_enricher_batch_retries_total 2.0" in metrics
    assert await topic_is_quiet(kafka_bootstrap, topics.dlq, 0, wait=0.5) == 0


async def test_erase_command_rejects_bad_ids_and_says_when_nobody_matches(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An operator gets a clear message and a non-zero exit code, never a traceback."""
    for name, val in env.items():
        monkeypatch.setenv(name, val)
    assert await asyncio.to_thread(cli.main, ["erase", "--person", "not-a-uuid"]) == 2
    assert "is not a person id" in capsys.readouterr().err
    assert (
        await asyncio.to_thread(cli.main, ["erase", "--person", "01a20f5c-0000-7000-8000-000000000000"]) == 1
    )
    assert "no person" in capsys.readouterr().err
    assert await asyncio.to_thread(cli.main, ["erase", "--email", "no at sign"]) == 2
    assert "not a valid email" in capsys.readouterr().err
