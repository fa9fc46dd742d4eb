"""Stage moves happen when their events happened, not when ingestion got to them: a backfill or a batch that
waited in Kafka keeps its days, so the weekly new-leads series (and the forecast over it) is not one spike on the
day of ingestion. A client's clock cannot move a stage into the future or years back."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg
import pytest

from crm_core.marketing.dataset import at, form
from leadline_crm.ingest.touches import write_batch
from leadline_crm.stages import MAX_BACKDATE, event_time
from leadline_shared.ids import new_id

pytestmark = pytest.mark.integration


async def moves(conn: asyncpg.Connection, person: str) -> list[tuple[str, datetime]]:
    rows = await conn.fetch(
        "SELECT to_stage, at FROM stage_transitions WHERE person_id = $1 ORDER BY at, to_stage", person
    )
    return [(r["to_stage"], r["at"]) for r in rows]


async def test_a_late_batch_moves_stages_at_the_events_own_time(crm_conn: asyncpg.Connection) -> None:
    person = new_id()
    signed_up = form(person, "late@example.com", "DE", at(6))
    signed_up.received_at = at(6, 11).isoformat()  # the collector got it an hour later
    await write_batch(crm_conn, [signed_up], now=at(20))  # ingestion two weeks later
    assert await moves(crm_conn, person) == [("lead", at(6))]
    lead_at = await crm_conn.fetchval("SELECT lead_at FROM marketing_stages WHERE person_id = $1", person)
    assert lead_at == at(6)
    assert await crm_conn.fetchval("SELECT stage_at FROM persons WHERE person_id = $1", person) == at(6)
    weekly = await crm_conn.fetch(
        "SELECT date_trunc('week', lead_at AT TIME ZONE 'UTC')::date AS week, count(*) AS n FROM marketing_stages"
        " GROUP BY 1"
    )
    assert [(str(r["week"]), r["n"]) for r in weekly] == [("2026-03-02", 1)]


async def test_a_clock_ahead_moves_no_stage_into_the_future(crm_conn: asyncpg.Connection) -> None:
    person = new_id()
    ahead = form(person, "ahead@example.com", "FR", at(28))  # the browser's clock says 28 March
    ahead.received_at = at(6).isoformat()
    await write_batch(crm_conn, [ahead], now=at(6, 12))
    assert await moves(crm_conn, person) == [("lead", at(6))]


def test_event_time_is_bounded_by_receipt_and_now() -> None:
    received, now = at(10), at(12)
    assert event_time(at(3), received, now) == at(3)
    assert event_time(at(11), received, now) == received
    assert event_time(at(14), at(13), now) == now  # received after now (a clock): now
    assert event_time(at(3) - MAX_BACKDATE * 2, received, now) == received - MAX_BACKDATE
    assert event_time(at(10) - timedelta(seconds=1), received, now) == at(10) - timedelta(seconds=1)
