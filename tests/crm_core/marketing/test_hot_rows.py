"""The rollup rows every batch adds to (migration 0072): written at commit, so two shards writing at once do not
wait on each other, and equal to the raw computation afterwards."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from crm_core.marketing.dataset import at, click, form, impression, seed
from leadline_crm.ingest.touches import write_batch
from leadline_crm.marketing import queries
from leadline_shared import pg
from leadline_shared.ids import new_id

DAILY = "SELECT count(*) FROM marketing_clicks_daily"


async def test_the_deltas_wait_in_the_transaction_and_land_at_commit(crm_conn: asyncpg.Connection) -> None:
    person = new_id()
    async with crm_conn.transaction():
        await write_batch(crm_conn, [click(person, "blog", "a1", at(2))], now=at(2))
        assert await crm_conn.fetchval("SELECT count(*) FROM marketing_clicks_daily_pending") == 1
        assert await crm_conn.fetchval(DAILY) == 0  # not yet: at commit
    assert await crm_conn.fetchval("SELECT count(*) FROM marketing_clicks_daily_pending") == 0
    assert await crm_conn.fetchval("SELECT sum(clicks) FROM marketing_clicks_daily") == 1


async def test_a_second_writer_does_not_wait_for_the_firsts_commit(
    pg_dsn: str, crm_schema: str, crm_conn: asyncpg.Connection
) -> None:
    """Two open transactions add to the same day's clicks and visitors: the second finishes its statements while
    the first is still open (before 0072 it waited on the first's row locks until its commit)."""
    pool = await pg.create_pool(pg_dsn, crm_schema, min_size=1, max_size=1)
    try:
        async with pool.acquire() as other, crm_conn.transaction():
            await write_batch(crm_conn, [click(new_id(), "blog", "a1", at(2))], now=at(2))
            async with other.transaction():
                second = write_batch(other, [click(new_id(), "blog", "a1", at(2, 11))], now=at(2, 11))
                await asyncio.wait_for(second, timeout=5)
    finally:
        await pool.close()
    assert await crm_conn.fetchval("SELECT sum(clicks) FROM marketing_clicks_daily") == 2


async def test_the_rollups_equal_the_raw_computation_after_concurrent_shards(
    pg_dsn: str, crm_schema: str, crm_conn: asyncpg.Connection
) -> None:
    await seed(crm_conn)
    pool = await pg.create_pool(pg_dsn, crm_schema, min_size=4, max_size=4)

    async def shard(day: int) -> None:
        async with pool.acquire() as conn:
            events = [click(new_id(), "blog", f"a{day % 2}", at(day, 9 + h)) for h in range(5)]
            events += [form(new_id(), f"p{day}@example.com", "DE", at(day, 12))]
            await write_batch(conn, events, now=at(day, 12))

    try:
        await asyncio.gather(*(shard(day) for day in (10, 10, 11, 11, 12, 12, 13, 13)))
    finally:
        await pool.close()
    for table, raw, columns in (
        (
            "marketing_clicks_daily",
            queries.RAW_CLICKS_DAILY,
            "day, affiliate_id, ad_id, clicks, prospect_clicks",
        ),
        ("marketing_visitors_daily", queries.RAW_DAILY, "day, source, campaign, visitors"),
        ("marketing_weekly", queries.RAW_WEEKLY, "week, leads, purchases, revenue"),
    ):
        kept = await crm_conn.fetch(f"SELECT {columns} FROM {table} ORDER BY 1, 2, 3")  # noqa: S608
        assert [tuple(r) for r in kept] == [
            tuple(r)
            for r in await crm_conn.fetch(f"SELECT {columns} FROM ({raw}) AS r ORDER BY 1, 2, 3")  # noqa: S608
        ], table


async def test_impressions_are_added_to_the_daily_counts_last(crm_conn: asyncpg.Connection) -> None:
    """Impressions add to today's row per ad, which every batch's transaction locks from that statement to its
    commit: the add is the transaction's last statement, so two writer shards wait on each other only that long."""
    statements: list[str] = []

    class Recording:  # the real connection, noting each statement it executes
        def __getattr__(self, name: str) -> Any:
            return getattr(crm_conn, name)

        async def execute(self, query: str, *args: Any) -> str:
            statements.append(query)
            return str(await crm_conn.execute(query, *args))

    events = [
        impression("blog", "a1", at(2)),
        click(new_id(), "blog", "a1", at(2)),
        form(new_id(), "x@y.example", "DE", at(2)),
    ]
    assert await write_batch(Recording(), events, now=at(2)) == 3  # type: ignore[arg-type]
    writes = [
        q
        for q in statements
        if not q.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "COMMIT", "BEGIN"))
    ]
    assert writes[-1] == queries.ADD_IMPRESSIONS
    assert await crm_conn.fetchval("SELECT sum(impressions) FROM marketing_impressions_daily") == 1
