"""A merge of two persons (an identity change) takes the merged person's cases, their events and service contracts
to the survivor: the merged person's row is deleted, so a case left pointing at it would make the merge fail."""

from __future__ import annotations

from datetime import date, timedelta

import asyncpg
import pytest

from crm_core.builders import NOW, form
from leadline_crm.ingest.identity import apply_changes
from leadline_crm.ingest.touches import write_batch
from leadline_shared.events import IdentityChange, utc_now_iso
from leadline_shared.ids import new_id

pytestmark = pytest.mark.integration


async def test_a_merge_moves_cases_and_contracts_to_the_survivor(crm_conn: asyncpg.Connection) -> None:
    old, survivor = new_id(), new_id()
    await write_batch(
        crm_conn, [form(old, email="old@example.com"), form(survivor, email="new@example.com")], now=NOW
    )
    case = await crm_conn.fetchval(
        "INSERT INTO cases (tracking_number, person_id, type, subject, description)"
        " VALUES ('SR-2026-000001', $1, 'fault', 's', 'd') RETURNING id",
        old,
    )
    await crm_conn.execute(
        "INSERT INTO case_events (case_id, person_id, kind, to_status, actor) VALUES ($1, $2, 'created', 'new', 'x')",
        case,
        old,
    )
    await crm_conn.execute(
        "INSERT INTO service_contracts (person_id, name, starts_on, ends_on) VALUES ($1, 'Plan', $2, $3)",
        old,
        date.today(),
        date.today() + timedelta(days=365),
    )
    change = IdentityChange(
        change_id=new_id(), kind="merge", person_id=survivor, at=utc_now_iso(), merged=[old]
    )
    assert await apply_changes(crm_conn, [change], now=NOW) == 1
    for table in ("cases", "case_events", "service_contracts"):
        assert await crm_conn.fetchval(f"SELECT count(*) FROM {table} WHERE person_id = $1", survivor) == 1  # noqa: S608
        assert await crm_conn.fetchval(f"SELECT count(*) FROM {table} WHERE person_id = $1", old) == 0  # noqa: S608
