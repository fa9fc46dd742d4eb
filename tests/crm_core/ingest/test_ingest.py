"""Ingestion into PostgreSQL: person facts from forms, score and lifecycle from events, exactly once."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg
import pytest

from crm_core.builders import NOW, event, form
from leadline_crm.ingest.touches import write_batch
from leadline_shared.ids import new_id

pytestmark = pytest.mark.integration


async def person(conn: asyncpg.Connection, pid: str) -> asyncpg.Record:
    return await conn.fetchrow("SELECT * FROM persons WHERE person_id = $1", pid)


async def transitions(conn: asyncpg.Connection, pid: str) -> list[tuple[str, str, str | None, str]]:
    rows = await conn.fetch(
        "SELECT from_stage, to_stage, cause_event_id, reason FROM stage_transitions WHERE person_id = $1 ORDER BY id",
        pid,
    )
    return [tuple(r) for r in rows]  # type: ignore[misc]


async def test_a_form_submission_makes_an_identified_lead_with_the_forms_fields(
    crm_conn: asyncpg.Connection,
) -> None:
    pid = new_id()
    view = event(pid, minutes_ago=5)
    sub = form(
        pid, email="Ada@Example.com", name="Ada Lovelace", phone="+441234567890", company="Analytical Ltd"
    )
    assert await write_batch(crm_conn, [view, sub]) == 2
    p = await person(crm_conn, pid)
    assert (p["first_name"], p["last_name"], p["company"]) == ("Ada", "Lovelace", "Analytical Ltd")
    assert p["emails"] == ["ada@example.com"]
    assert p["phones"] == ["+441234567890"]
    assert p["stage"] == "lead"
    assert p["score"] == pytest.approx(20, rel=1e-3)  # the default rule: form submit +20
    assert await transitions(crm_conn, pid) == [("anonymous", "lead", sub.event_id, "automatic")]


async def test_anonymous_visits_make_no_lead(crm_conn: asyncpg.Connection) -> None:
    pid = new_id()
    await write_batch(crm_conn, [event(pid, minutes_ago=m) for m in range(3)])
    assert (await person(crm_conn, pid))["stage"] == "anonymous"
    assert await transitions(crm_conn, pid) == []


async def test_an_email_link_click_makes_a_lead_a_prospect(crm_conn: asyncpg.Connection) -> None:
    pid = new_id()
    await write_batch(crm_conn, [form(pid, email="b@example.com")])
    click = event(
        pid, "link_click", link={"campaign_id": "c1", "send_id": "s1", "target": "https://x.example/"}
    )
    await write_batch(crm_conn, [click])
    assert (await person(crm_conn, pid))["stage"] == "prospect"
    assert (await transitions(crm_conn, pid))[-1] == ("lead", "prospect", click.event_id, "automatic")


async def test_repeat_visits_on_three_days_make_a_prospect(crm_conn: asyncpg.Connection) -> None:
    pid = new_id()
    await write_batch(crm_conn, [form(pid, email="c@example.com")])
    await write_batch(crm_conn, [event(pid, minutes_ago=60 * 24 * d) for d in (2, 1)])
    assert (await person(crm_conn, pid))["stage"] == "lead"
    await write_batch(crm_conn, [event(pid, minutes_ago=0)])
    p = await person(crm_conn, pid)
    assert (p["visit_days"], p["stage"]) == (3, "prospect")


async def test_a_replayed_batch_adds_no_score_and_no_transition(crm_conn: asyncpg.Connection) -> None:
    pid = new_id()
    batch = [form(pid, email="d@example.com"), event(pid, context={"url": "https://shop.example/pricing"})]
    assert await write_batch(crm_conn, batch, now=NOW) == 2
    assert await write_batch(crm_conn, batch, now=NOW) == 0
    assert await write_batch(crm_conn, batch + batch, now=NOW) == 0
    p = await person(crm_conn, pid)
    assert p["score"] == pytest.approx(30, rel=1e-3)
    assert len(await transitions(crm_conn, pid)) == 1
    assert await crm_conn.fetchval("SELECT count(*) FROM touchpoints WHERE person_id = $1", pid) == 2


async def test_score_crosses_the_threshold_and_decays(crm_conn: asyncpg.Connection) -> None:
    pid = new_id()
    pricing = {"url": "https://shop.example/pricing"}
    await write_batch(crm_conn, [form(pid, email="e@example.com")], now=NOW)
    await write_batch(crm_conn, [event(pid, context=pricing) for _ in range(2)], now=NOW)
    p = await person(crm_conn, pid)
    assert (p["score"], p["stage"]) == (pytest.approx(40, rel=1e-3), "lead")
    await write_batch(crm_conn, [event(pid, context=pricing) for _ in range(2)], now=NOW)
    assert (await person(crm_conn, pid))["stage"] == "prospect"  # 60 ≥ the default threshold of 50
    later = NOW + timedelta(days=30)  # one default half-life
    await write_batch(crm_conn, [event(pid)], now=later)
    assert (await person(crm_conn, pid))["score"] == pytest.approx(30, rel=1e-2)


async def test_custom_score_rules_apply_from_the_next_batch(crm_conn: asyncpg.Connection) -> None:
    await crm_conn.execute("UPDATE score_rules SET active = false")
    await crm_conn.execute(
        "INSERT INTO score_rules (name, event_type, url_contains, points) VALUES ('demo', 'page_view', '/demo', 7)"
    )
    pid = new_id()
    await write_batch(
        crm_conn, [form(pid, email="f@example.com"), event(pid, context={"url": "https://s/demo"})], now=NOW
    )
    assert (await person(crm_conn, pid))["score"] == pytest.approx(7, rel=1e-3)


async def test_an_identify_call_sets_traits_and_the_geo_sets_the_country(
    crm_conn: asyncpg.Connection,
) -> None:
    pid = new_id()
    ident = event(
        pid,
        "identify",
        ids={"user_id": "u-42", "email": "kim@example.com"},
        properties={
            "traits": {"first_name": "Kim", "last_name": "Lee", "company": "Lee & Co", "industry": "retail"}
        },
    )
    ident.geo = {"country": "DE", "region": "BE"}
    await write_batch(crm_conn, [ident], now=NOW)
    p = await person(crm_conn, pid)
    assert (p["first_name"], p["last_name"], p["company"], p["industry"]) == (
        "Kim",
        "Lee",
        "Lee & Co",
        "retail",
    )
    assert (p["country"], p["region"], p["user_ids"], p["stage"]) == ("DE", "BE", ["u-42"], "lead")
    assert p["source"] == "segment"


async def test_values_a_copy_line_would_misread_are_stored_as_they_came(crm_conn: asyncpg.Connection) -> None:
    """Tabs, newlines, backslashes and a non-ASCII letter in the URL, the ids and the event text reach the
    touchpoint unchanged (the batch goes in by COPY)."""
    url = "https://x.example/a\tb\\c\nd\r\\N é"
    e = event(new_id(), context={"url": url}, anon_id="anon\t\\N\n1")
    await write_batch(crm_conn, [e])
    row = await crm_conn.fetchrow(
        "SELECT url, anon_id, event, occurred_at, automated FROM touchpoints WHERE event_id = $1", e.event_id
    )
    assert (row["url"], row["anon_id"]) == (url, "anon\t\\N\n1")
    assert row["event"] == e.to_json().decode()
    assert row["occurred_at"] == datetime.fromisoformat(str(e.occurred_at))
    assert row["automated"] is False
