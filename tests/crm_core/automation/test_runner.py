"""The automation loop against real PostgreSQL: every handler sees each event once and the rows are gone after;
an event a handler keeps failing on is set aside in domain_events_dead and the others go on; one leader per schema."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import pytest

from leadline_crm.app import MIGRATIONS
from leadline_crm.automation import events
from leadline_crm.automation.runner import Runner
from leadline_shared import pg

pytestmark = pytest.mark.integration


async def test_a_poison_event_is_set_aside_and_the_rest_are_handled(pg_dsn: str, schema: str) -> None:
    await pg.migrate(pg_dsn, schema, MIGRATIONS)
    pool = await pg.create_pool(pg_dsn, schema, min_size=1, max_size=2)
    seen: list[str] = []

    async def handler(conn: asyncpg.Connection, batch: Sequence[events.DomainEvent]) -> None:
        for e in batch:
            if e.source_key == "bad":
                raise ValueError("cannot take it")
        await conn.execute("SELECT 1")
        seen.extend(e.source_key for e in batch)

    try:
        async with pool.acquire() as conn:
            await events.emit(conn, [events.NewEvent("deal.won", k) for k in ("a", "bad", "c")])
            runner = Runner(pool, [handler])
            while await runner.step(conn):
                pass
            assert sorted(seen) == ["a", "c"]
            assert await conn.fetchval("SELECT count(*) FROM domain_events") == 0
            dead = await conn.fetch("SELECT source_key, error FROM domain_events_dead")
            assert [(r["source_key"], r["error"]) for r in dead] == [("bad", "ValueError")]
    finally:
        await pool.close()


async def test_one_loop_leads_per_schema(pg_dsn: str, schema: str) -> None:
    await pg.migrate(pg_dsn, schema, MIGRATIONS)
    pool = await pg.create_pool(pg_dsn, schema, min_size=2, max_size=2)
    try:
        async with pool.acquire() as a:
            assert await a.fetchval(
                "SELECT pg_try_advisory_lock(hashtext('leadline.automation.' || current_schema()))"
            )
            second = Runner(pool, [], standby_seconds=0.01)
            assert await second._term() is False  # the lock is held: it stands by
            await a.fetchval(
                "SELECT pg_advisory_unlock(hashtext('leadline.automation.' || current_schema()))"
            )
    finally:
        await pool.close()
