"""``leadline demo`` (make demo): a small world sent through a real collector, enricher and crm-core on the real
Kafka and PostgreSQL shows up in the API as a living CRM, a second run adds nothing, and a seed is a world."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from crm_pipeline import Pipeline, eventually, run_pipeline
from leadline_collector.app import create_app as create_collector
from leadline_collector.settings import CollectorSettings
from leadline_crm.http import auth
from leadline_localstack.demo import sales, service
from leadline_localstack.demo import world as w
from leadline_localstack.demo.http import Api, DemoError
from leadline_localstack.demo.run import STEPS, Report, Target, counts, make
from leadline_shared import config, kafka
from leadline_shared.cli import main
from leadline_shared.identifiers import canonical_email, canonical_phone
from sites import LINK_KEYS, WEBHOOK_KEYS

SEED, SCALE = 5, 0.02
FINGERPRINTS = {1: "2bb5739ec11c10234c3482e9a1a7eca31368914b2103b4d71bbc78cea2fc942d"}
"""What seed 1 makes at scale 0.02 for the month before 2026-11-30, by world version."""


def test_what_a_seed_makes_changes_only_with_the_world_version() -> None:
    """A stack keeps the world version its world was made by, and the demo tops up only a world of its own
    version; a change to what a seed makes without a new version would top up old worlds with records of
    another (a shared phone number once merged people; changing it changed every purchase)."""
    world = w.make_world(1, SCALE, w.anchor_of(date(2026, 11, 30)))
    assert world.fingerprint() == FINGERPRINTS[w.WORLD_VERSION], "bump WORLD_VERSION and add its fingerprint"


def test_a_seed_is_a_world() -> None:
    """The same seed gives the same people, cookies and event ids, whatever the day the world was made (its
    month is laid out before that day); another seed gives other people; a larger scale keeps the first ones."""
    day1, day2 = w.anchor_of(date(2026, 11, 30)), w.anchor_of(date(2026, 12, 24))
    one, again, later = (
        w.make_world(SEED, SCALE, day1),
        w.make_world(SEED, SCALE, day1),
        w.make_world(SEED, SCALE, day2),
    )
    people = [(v.cookie, v.person) for v in one.visitors]
    assert (
        people
        == [(v.cookie, v.person) for v in again.visitors]
        == [(v.cookie, v.person) for v in later.visitors]
    )
    assert [s[0].event_id for v in one.visitors for s in v.sessions] == [
        s[0].event_id for v in later.visitors for s in v.sessions
    ]
    assert one.summary() == again.summary()
    other = w.make_world(SEED + 1, SCALE, day1)
    assert {v.person.email for v in one.known if v.person} != {
        v.person.email for v in other.known if v.person
    }
    bigger = w.make_world(SEED, SCALE * 3, day1)
    assert [v.person for v in bigger.visitors[:10]] == [v.person for v in one.visitors[:10]]
    first = min(view.at for v in one.visitors for s in v.sessions for view in s)
    assert day1.timestamp() - 31 * 86400 < first.timestamp() < day1.timestamp()


def test_the_world_passes_the_products_own_checks() -> None:
    """Every e-mail and phone the demo types into forms is one the collector accepts (else a form is a 422), and
    the default world is the size the README promises: thousands of visitors, several reps selling."""
    world = w.make_world(1, 1.0, w.anchor_of(date(2026, 11, 30)))
    people = [v.person for v in world.visitors if v.person] + [
        c.visitor.person for c in world.ad_clicks if c.visitor.person
    ]
    people += [lead.person for lead in world.rep_leads]
    assert all(canonical_email(p.email) == p.email for p in people)
    assert all(canonical_phone(p.phone, "US") for p in people)
    assert len({p.email for p in people}) == len(people)
    assert len({canonical_phone(p.phone, "US") for p in people}) == len(people), (
        "a shared phone is one person"
    )
    # the natural keys the demo looks records up by, so a second run finds each one
    assert len({(p.email, p.sku, p.purchased_on) for p in world.purchases}) == len(world.purchases)
    assert len({(a.email, a.kind, a.at) for a in world.activities}) == len(world.activities)
    assert len({(f.email, f.text) for f in world.feedback}) == len(world.feedback)
    assert len({(s.campaign, s.visitor.n) for s in world.sends}) == len(world.sends)
    summary = world.summary()
    assert summary["visitors"] >= 3000
    assert summary["page_views"] >= 10000
    assert len({p.rep for p in world.purchases}) == len(w.SALES_REPS)
    assert {c.affiliate.affiliate_id for c in world.ad_clicks if c.converts} == {
        a.affiliate_id for a in w.AFFILIATES
    }


@pytest.fixture
async def stack(
    kafka_bootstrap: str, pg_dsn: str, schema: str, run_id: str, topics: kafka.Topics, tmp_path: Path
) -> AsyncIterator[tuple[Target, Pipeline]]:
    """A collector (trusting this machine as its proxy, as a site behind a load balancer would), an enricher and
    crm-core on this test's topics and schemas, and an admin token."""
    collector_env = {
        "LEADLINE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "LEADLINE_TOPIC_PREFIX": f"test-{run_id}.",
        "LEADLINE_SPOOL_DIR": str(tmp_path / "spool"),
        "LEADLINE_LINK_KEYS": LINK_KEYS,
        "LEADLINE_TRUSTED_PROXIES": "127.0.0.1/32",
    }
    async with TestClient(
        TestServer(create_collector(config.load(CollectorSettings, collector_env)))
    ) as collector:
        collector_url = str(collector.make_url("")).rstrip("/")
        crm_extra = {
            "LEADLINE_LINK_KEYS": LINK_KEYS,
            "LEADLINE_WEBHOOK_KEYS": WEBHOOK_KEYS,
            "LEADLINE_COLLECTOR_PUBLIC_URL": collector_url,
        }
        async with run_pipeline(kafka_bootstrap, pg_dsn, schema, run_id, crm_extra) as pipeline:
            conn = await asyncpg.connect(pg_dsn, server_settings={"search_path": schema})
            try:
                token = await auth.create_token(conn, "demo", "admin")
            finally:
                await conn.close()
            crm_url = str(pipeline.crm.make_url("")).rstrip("/")
            yield Target(collector_url, crm_url, token, concurrency=4, wait_seconds=60), pipeline


async def _timeline(p: Pipeline, person_id: str) -> list[dict[str, Any]]:
    status, doc = await p.get(f"/api/v1/persons/{person_id}/timeline", limit="500")
    assert status == 200
    items: list[dict[str, Any]] = doc["items"]
    return items


async def _person(p: Pipeline, email: str) -> dict[str, Any] | None:
    found = await p.persons_with(email)
    return found[0] if found else None


async def _settled(p: Pipeline, world: w.World) -> None:
    """Today's form leads (posted while the demo ran) have reached crm-core."""
    emails = [c.visitor.person.email for c in world.ad_clicks if c.converts and c.visitor.person]
    emails += [v.person.email for v in world.contact_posts if v.person]

    async def arrived() -> bool:
        return all([await _person(p, e) is not None for e in emails])

    await eventually(arrived, "today's form leads in crm-core", timeout=60)

    async def opened() -> bool:  # the support form's posts have opened their cases
        status, found = await p.get("/api/v1/cases", limit="200")
        return status == 200 and len(found["items"]) >= len(service.cases(world)) + len(
            service.support_posts(world)
        )

    await eventually(opened, "the support form's cases in crm-core", timeout=60)


async def _drained(p: Pipeline, run_id: str) -> None:
    """The enricher has consumed the raw topic and crm-core the enriched one, to their ends: whatever was sent
    is stored (or was found to be stored already)."""

    async def consumed(group: str, topic: str) -> bool:
        """Nothing a read_committed reader would get lies past ``group``'s committed offsets. Both topics carry
        transactions' commit markers (the enricher writes the enriched topic, and the raw one with the events it
        splits from batch records), which no consumer reads: a committed offset may stay short of the end by
        markers only, so the rest is read to be sure."""
        admin = AIOKafkaAdminClient(bootstrap_servers=p.bootstrap)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=p.bootstrap, isolation_level="read_committed", enable_auto_commit=False
        )
        await admin.start()
        await consumer.start()
        try:
            committed = await admin.list_consumer_group_offsets(group)
            (described,) = await admin.describe_topics([topic])
            parts = [TopicPartition(topic, part["partition"]) for part in described["partitions"]]
            consumer.assign(parts)
            ends = await consumer.end_offsets(parts)
            behind = {tp: committed[tp].offset if tp in committed else 0 for tp in parts}
            behind = {tp: start for tp, start in behind.items() if start < ends[tp]}
            for tp, start in behind.items():
                consumer.seek(tp, start)
            if behind and any((await consumer.getmany(*behind, timeout_ms=1000)).values()):
                return False
            return bool(parts) and all([await consumer.position(tp) >= ends[tp] for tp in behind])
        finally:
            await consumer.stop()
            await admin.close()

    async def drained() -> bool:
        return await consumed(f"enricher-{run_id}", p.topics.raw) and await consumed(
            f"crm-{run_id}", p.topics.enriched
        )

    await eventually(drained, "the enricher and crm-core caught up", timeout=60)


async def _counts(target: Target) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        return await counts(Api(session, target.crm_url, target.token))


@pytest.mark.integration
async def test_make_demo_fills_the_crm_and_a_second_run_adds_nothing(stack: tuple[Target, Pipeline]) -> None:
    target, p = stack
    report: Report = await make(target, SEED, SCALE, quiet=True)
    assert report.sent == list(STEPS)
    assert report.proxy_trusted is True, "each visitor's forwarded address is stored"
    world = w.make_world(SEED, SCALE, w.anchor_of(date.fromisoformat(report.anchor)))
    await _settled(p, world)
    first = await _counts(target)

    # persons, leads, customers bought from several reps, feedback, activities
    assert first["known_persons"] >= len(world.known)
    assert {"lead", "prospect", "customer"} <= set(first["stages"])
    assert first["purchases"] == len(world.purchases)
    assert first["purchase_reps"] >= 3
    assert first["feedback"] == len(world.feedback) >= 1
    assert first["activities"] == len(world.activities) >= 1
    assert first["users"] == len(w.USERS)
    assert first["affiliates"] == len(w.AFFILIATES)
    lead = world.rep_leads[0].person
    typed = await _person(p, lead.email)
    assert typed is not None
    assert typed["stage"] == "lead"
    assert typed["first_name"] == lead.first_name

    # the month's history is backdated: a visitor's first page view is weeks old
    v = world.visitors[0]
    status, events = await p.get("/api/v1/events", anon_id=v.cookie, limit="500")
    assert status == 200
    oldest = min(datetime.fromisoformat(e["occurred_at"]) for e in events["items"])
    assert oldest == v.sessions[0][0].at
    assert oldest < datetime.now(UTC).replace(hour=0)
    assert {e["context"]["ip"] for e in events["items"]} == {v.ip}

    # e-mail scanners and image proxies are on the recipients' timelines, marked automated
    machine = next(s for s in world.sends if (s.scanner or s.image_proxy) and (s.opens or s.clicks))
    assert machine.visitor.person is not None
    recipient = await _person(p, machine.visitor.person.email)
    assert recipient is not None
    touches = [t["data"] for t in await _timeline(p, recipient["id"]) if t["kind"] == "touchpoint"]
    automated = [t for t in touches if t["automated"]]
    assert automated
    assert all(t["type"] in ("email_open", "link_click") for t in automated)
    assert any(not t["automated"] and t["type"] in ("email_open", "link_click") for t in touches)

    # each affiliate brought a prospect: the ad click before the quote request counts
    for affiliate in w.AFFILIATES:
        click = next(c for c in world.ad_clicks if c.converts and c.affiliate is affiliate)
        assert click.visitor.person is not None
        prospect = await _person(p, click.visitor.person.email)
        assert prospect is not None
        assert prospect["stage"] == "prospect", affiliate.affiliate_id
        kinds = {
            (t["data"]["type"], (t["data"].get("affiliate") or {}).get("affiliate_id"))
            for t in await _timeline(p, prospect["id"])
            if t["kind"] == "touchpoint"
        }
        assert ("ad_click", affiliate.affiliate_id) in kinds
        assert ("form_submit", None) in kinds

    # the service desk: the knowledge base, contracts (one renewal due), cases in every state with comments
    assert first["kb_articles"] == len(service.ARTICLES) == 20
    assert first["contracts"] == len(service.contracts(world)) >= 1
    desk = service.cases(world)
    posted = service.support_posts(world)  # the support form's posts open cases of their own, by ingestion
    assert report.service["support_posts"] == len(posted)
    assert first["cases"] == len(desk) + len(posted) >= 4
    assert set(first["case_statuses"]) == {c.status for c in desk}
    assert report.service["moves"] == sum(len(service.PATHS[c.status]) for c in desk)
    status, due = await p.get("/api/v1/contracts/renewals")
    assert status == 200
    assert due["items"]
    customer = await _person(p, desk[0].email)
    assert customer is not None
    status, found = await p.get("/api/v1/cases", person_id=customer["id"])
    assert status == 200
    [shown] = found["items"]
    status, case = await p.get(f"/api/v1/cases/{shown['tracking_number']}")
    assert [c["body"] for c in case["comments"]] == [text for text, _ in desk[0].comments]
    assert any(t["kind"] == "case" for t in await _timeline(p, customer["id"]))
    status, hits = await p.get("/api/v1/kb/search", q="inverter eror")
    assert hits["items"][0]["title"].startswith("Inverter shows error E-21")

    # the sales workspace: companies with their people, owners and next steps, deals across the pipeline with
    # their stage history, tasks (some overdue)
    assert first["companies"] == len(sales.companies(world)) >= 1
    deals = sales.deals(world)
    assert first["deal_stages"] == {
        s: sum(1 for d in deals if d.stage == s) for s in {d.stage for d in deals}
    }
    assert "Won" in first["deal_stages"]
    assert first["tasks"] == len(sales.tasks(world, datetime.now(UTC)))
    assert first["owned_persons"] >= len(sales.owners(world))
    won = next(d for d in deals if d.stage == "Won")
    buyer = await _person(p, won.email)
    assert buyer is not None
    status, found = await p.get("/api/v1/deals", person=buyer["id"])
    [deal] = found["items"]
    status, deal = await p.get(f"/api/v1/deals/{deal['id']}")
    assert [h["to_stage"] for h in deal["history"]] == [
        "Qualified",
        "Meeting",
        "Proposal",
        "Negotiation",
        "Won",
    ]
    assert any(t["kind"] == "deal" for t in await _timeline(p, buyer["id"]))
    company = sales.companies(world)[0]
    status, listed = await p.get("/api/v1/companies", limit="500")
    [shown] = [c for c in listed["items"] if c["name"] == company.name]
    status, people = await p.get(f"/api/v1/companies/{shown['id']}/people")
    assert len(people["items"]) == len(company.people)

    # again: nothing is sent twice, nothing grows
    again = await make(target, SEED, SCALE, quiet=True)
    assert again.sent == []
    assert set(again.skipped) == set(report.sent)
    assert set(again.service.values()) == {0}
    assert set(again.sales.values()) == {0}
    assert await _counts(target) == first

    # a world made by another version of the demo is not topped up with this one's records
    status, source = await p.get(f"/api/v1/sources/{w.WRITE_KEY}")
    source["settings"]["demo"][str(SEED)]["version"] = w.WORLD_VERSION - 1
    async with aiohttp.ClientSession() as session:
        await Api(session, target.crm_url, target.token).patch(
            f"/api/v1/sources/{w.WRITE_KEY}", {"settings": source["settings"]}
        )
    with pytest.raises(DemoError, match="another version of leadline demo"):
        await make(target, SEED, SCALE, quiet=True)
    assert await _counts(target) == first


@pytest.mark.integration
async def test_a_resent_month_is_stored_once(stack: tuple[Target, Pipeline], run_id: str) -> None:
    """Top-up after an interruption: a step not recorded as done is sent again, and its events (ids from the
    seed) are stored once, so the people and their histories do not grow."""
    target, p = stack
    report = await make(target, SEED, SCALE, quiet=True)
    world = w.make_world(SEED, SCALE, w.anchor_of(date.fromisoformat(report.anchor)))
    await _settled(p, world)
    await _drained(p, run_id)
    visitor = next(v for v in world.visitors if v.app_user)
    status, before = await p.get("/api/v1/events", anon_id=visitor.cookie, limit="500")
    first = await _counts(target)

    status, source = await p.get(f"/api/v1/sources/{w.WRITE_KEY}")
    demo = source["settings"]["demo"]
    demo[str(SEED)]["done"].remove("month")  # as if the run had stopped before recording the month
    async with aiohttp.ClientSession() as session:
        await Api(session, target.crm_url, target.token).patch(
            f"/api/v1/sources/{w.WRITE_KEY}", {"settings": source["settings"]}
        )

    again = await make(target, SEED, SCALE, quiet=True)
    assert again.sent == ["month"]
    await _drained(p, run_id)
    status, after = await p.get("/api/v1/events", anon_id=visitor.cookie, limit="500")
    assert status == 200
    assert sorted(e["event_id"] for e in after["items"]) == sorted(e["event_id"] for e in before["items"])
    assert await _counts(target) == first


def test_demo_without_a_token_says_to_run_make_up(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`make demo` before `make up` (no admin token yet) stops with a sentence, not a traceback."""
    assert main(["demo", "--token-file", str(tmp_path / "admin.token"), "--quiet"]) == 1
    assert "run make up first" in capsys.readouterr().err


def test_demo_refuses_a_scale_it_cannot_make(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--scale", "0"])
    assert exc.value.code == 2
    assert "the scale must be above 0" in capsys.readouterr().err
