"""Identity changes: merges re-point history and recompute stage and score; erasure removes personal data."""

from __future__ import annotations

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from crm_core.builders import NOW, event, form
from leadline_crm.ingest.identity import apply_changes
from leadline_crm.ingest.touches import write_batch
from leadline_shared.events import IdentityChange, utc_now_iso
from leadline_shared.ids import new_id

pytestmark = pytest.mark.integration


def merge(survivor: str, *olds: str) -> IdentityChange:
    return IdentityChange(
        change_id=new_id(), kind="merge", person_id=survivor, at=utc_now_iso(), merged=list(olds)
    )


async def seed_history(conn: asyncpg.Connection, pid: str) -> None:
    """A rep activity and a purchase on ``pid``, as the API would write them."""
    product = await conn.fetchval(
        "INSERT INTO products (sku, name, list_price) VALUES ($1, 'Widget', 10) RETURNING id", new_id()
    )
    await conn.execute(
        "INSERT INTO purchases (person_id, product_id, quantity, price_paid) VALUES ($1, $2, 1, 9)",
        pid,
        product,
    )
    await conn.execute("UPDATE persons SET purchases = 1 WHERE person_id = $1", pid)
    await conn.execute(
        "INSERT INTO activities (person_id, kind, outcome) VALUES ($1, 'note', 'called back')", pid
    )


async def test_a_merge_moves_history_to_the_survivor_and_recomputes_its_stage(
    crm_conn: asyncpg.Connection,
) -> None:
    anon, known = new_id(), new_id()
    pricing = {"url": "https://shop.example/pricing"}
    await write_batch(crm_conn, [event(anon, minutes_ago=10 + i, context=pricing) for i in range(3)], now=NOW)
    await seed_history(crm_conn, anon)
    await write_batch(crm_conn, [form(known, email="g@example.com", name="Grace Hopper")], now=NOW)
    assert await crm_conn.fetchval("SELECT stage FROM persons WHERE person_id = $1", known) == "lead"

    change = merge(known, anon)
    assert await apply_changes(crm_conn, [change], now=NOW) == 1
    assert await crm_conn.fetchval("SELECT count(*) FROM persons WHERE person_id = $1", anon) == 0
    for table in ("touchpoints", "activities", "purchases"):
        assert await crm_conn.fetchval(f"SELECT count(*) FROM {table} WHERE person_id = $1", anon) == 0  # noqa: S608
    assert await crm_conn.fetchval("SELECT count(*) FROM touchpoints WHERE person_id = $1", known) == 4
    p = await crm_conn.fetchrow("SELECT * FROM persons WHERE person_id = $1", known)
    assert (p["stage"], p["purchases"], p["first_name"]) == ("customer", 1, "Grace")
    assert p["score"] == pytest.approx(50, rel=1e-2)  # 20 (form) + 3 x 10 (pricing), recomputed from history
    last = await crm_conn.fetchrow(
        "SELECT from_stage, to_stage, cause_event_id FROM stage_transitions WHERE person_id = $1 ORDER BY id DESC",
        known,
    )
    assert tuple(last) == ("lead", "customer", change.change_id)

    assert await apply_changes(crm_conn, [change], now=NOW) == 0  # a replay changes nothing
    late = event(anon)  # an event still carrying the old id arrives after the merge
    assert await write_batch(crm_conn, [late], now=NOW) == 1
    assert (
        await crm_conn.fetchval("SELECT person_id::text FROM touchpoints WHERE event_id = $1", late.event_id)
        == known
    )
    assert await crm_conn.fetchval("SELECT count(*) FROM persons WHERE person_id = $1", anon) == 0


async def test_merges_chain_so_the_oldest_id_reaches_the_last_survivor(crm_conn: asyncpg.Connection) -> None:
    a, b, c = new_id(), new_id(), new_id()
    await write_batch(crm_conn, [event(a), event(b), event(c)], now=NOW)
    await apply_changes(crm_conn, [merge(b, a), merge(c, b)], now=NOW)
    late = event(a)
    await write_batch(crm_conn, [late], now=NOW)
    assert (
        await crm_conn.fetchval("SELECT person_id::text FROM touchpoints WHERE event_id = $1", late.event_id)
        == c
    )
    assert await crm_conn.fetchval("SELECT count(*) FROM touchpoints WHERE person_id = $1", c) == 4


async def test_a_link_adds_the_identifier_and_makes_a_lead(crm_conn: asyncpg.Connection) -> None:
    pid = new_id()
    await write_batch(crm_conn, [event(pid)], now=NOW)
    link = IdentityChange(
        change_id=new_id(),
        kind="link",
        person_id=pid,
        at=utc_now_iso(),
        identifier={"type": "email", "value": "H@x.io"},
    )
    await apply_changes(crm_conn, [link], now=NOW)
    p = await crm_conn.fetchrow("SELECT emails, stage FROM persons WHERE person_id = $1", pid)
    assert (p["emails"], p["stage"]) == (["h@x.io"], "lead")


async def test_erasure_removes_personal_data_but_keeps_the_counts(crm_conn: asyncpg.Connection) -> None:
    pid = new_id()
    await write_batch(
        crm_conn, [form(pid, email="i@example.com", name="Ida Rhodes", phone="+15551234567")], now=NOW
    )
    await seed_history(crm_conn, pid)
    erase = IdentityChange(change_id=new_id(), kind="erase", person_id=pid, at=utc_now_iso())
    await apply_changes(crm_conn, [erase], now=NOW)
    p = await crm_conn.fetchrow("SELECT * FROM persons WHERE person_id = $1", pid)
    assert (p["emails"], p["phones"], p["first_name"], p["last_name"]) == ([], [], None, None)
    assert p["erased_at"] is not None
    stored = await crm_conn.fetchval("SELECT event::text FROM touchpoints WHERE person_id = $1", pid)
    assert "i@example.com" not in stored
    assert "Ida" not in stored
    assert await crm_conn.fetchval("SELECT outcome FROM activities WHERE person_id = $1", pid) is None
    assert await crm_conn.fetchval("SELECT count(*) FROM purchases WHERE person_id = $1", pid) == 1


async def test_reading_a_merged_person_names_the_survivor(
    client: TestClient, auth_headers: dict[str, dict[str, str]], pg_dsn: str, schema: str
) -> None:
    old, survivor = new_id(), new_id()
    conn = await asyncpg.connect(pg_dsn, server_settings={"search_path": schema})
    try:
        await write_batch(conn, [event(old), event(survivor)], now=NOW)
        await apply_changes(conn, [merge(survivor, old)], now=NOW)
    finally:
        await conn.close()
    resp = await client.get(f"/api/v1/persons/{old}", headers=auth_headers["read_only"])
    assert resp.status == 404
    assert (await resp.json())["merged_into"] == survivor


async def test_erasure_empties_what_agents_wrote_about_the_person_in_cases(
    crm_conn: asyncpg.Connection,
) -> None:
    """Case subjects, descriptions and comments quote the customer ("Ida Rhodes called from +1 555…"): an erasure
    leaves none of it, while the case, its tracking number and its status history stay for the service counts."""
    pid = new_id()
    await write_batch(crm_conn, [form(pid, email="i@example.com", name="Ida Rhodes")], now=NOW)
    case = await crm_conn.fetchval(
        "INSERT INTO cases (tracking_number, person_id, type, subject, description)"
        " VALUES ('SR-2026-999999', $1, 'complaint', 'Ida Rhodes: broken panel', 'call i@example.com') RETURNING id",
        pid,
    )
    await crm_conn.execute(
        "INSERT INTO case_comments (case_id, author, body) VALUES ($1, 'agent', 'Ida says i@example.com')",
        case,
    )
    await apply_changes(
        crm_conn, [IdentityChange(change_id=new_id(), kind="erase", person_id=pid, at=utc_now_iso())]
    )
    row = await crm_conn.fetchrow(
        "SELECT subject, description, tracking_number FROM cases WHERE id = $1", case
    )
    assert row["tracking_number"] == "SR-2026-999999"
    assert "Ida" not in row["subject"] + row["description"]
    assert "i@example.com" not in row["description"]
    assert "Ida" not in await crm_conn.fetchval("SELECT body FROM case_comments WHERE case_id = $1", case)
