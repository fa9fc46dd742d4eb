"""The credits computed outside ingestion's transaction (migration 0071): queued by ingestion, folded by the
automation loop's job, caught up by the reports that read them."""

from __future__ import annotations

import asyncio
from datetime import date

import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from crm_core.marketing.dataset import at, click, form, newsletter, seed
from leadline_crm import automation, marketing
from leadline_crm.ingest.touches import write_batch
from leadline_crm.marketing import recredit, reports
from leadline_shared import pg
from leadline_shared.ids import new_id

MARCH = reports.Query(date(2026, 3, 1), date(2026, 3, 31))
QUEUED = "SELECT count(DISTINCT person_id) FROM marketing_recredit_queue"
CREDITED = "SELECT count(*) FROM {} WHERE person_id = $1"


async def same_as_raw(conn: asyncpg.Connection) -> None:
    for report in ("ads", "emails", "funnel"):
        for model in reports.MODELS:
            by = {"ads": "ad", "emails": "send", "funnel": "source"}[report]
            q = reports.Query(MARCH.start, MARCH.end, model=model, by=by)
            assert await reports.compute(conn, report, q) == await reports.compute(
                conn, report, q, naive=True
            )


async def test_ingestion_queues_the_credits_and_the_fold_computes_them(crm_conn: asyncpg.Connection) -> None:
    m = await seed(crm_conn)
    await newsletter(crm_conn, m)
    # nothing credited inside ingestion's transactions: the persons wait in the queue
    assert await crm_conn.fetchval(QUEUED) >= 3
    for table in ("marketing_credits", "marketing_email_credits", "marketing_stage_credits"):
        assert await crm_conn.fetchval(CREDITED.format(table), m.a) == 0, table
    assert await recredit.Refolder(CollectorRegistry())(crm_conn) >= 3
    assert await crm_conn.fetchval(QUEUED) == 0
    for table in ("marketing_credits", "marketing_email_credits", "marketing_stage_credits"):
        assert await crm_conn.fetchval(CREDITED.format(table), m.a) > 0, table
    assert await recredit.Refolder(CollectorRegistry())(crm_conn) == 0  # an empty queue: nothing to do
    await same_as_raw(crm_conn)


async def test_a_report_catches_up_on_what_is_still_queued(crm_conn: asyncpg.Connection) -> None:
    m = await seed(crm_conn)
    await newsletter(crm_conn, m)
    assert await crm_conn.fetchval(QUEUED) > 0
    await same_as_raw(crm_conn)  # the kept reports fold the queue first, so they equal the raw computation
    assert await crm_conn.fetchval(QUEUED) == 0


async def test_one_fold_at_a_time_and_a_change_during_a_fold_stays_queued(
    pg_dsn: str, crm_schema: str, crm_conn: asyncpg.Connection
) -> None:
    m = await seed(crm_conn)
    pool = await pg.create_pool(pg_dsn, crm_schema, min_size=1, max_size=1)
    try:
        async with pool.acquire() as other:
            async with other.transaction():
                assert await other.fetchval("SELECT marketing_refold(true)") > 0  # holds the fold's lock
                assert (
                    await recredit.Refolder(CollectorRegistry())(crm_conn) == 0
                )  # a second fold leaves the queue to the first
                # A clicks again while the first fold's transaction is open: a new queue row for A
                await write_batch(crm_conn, [click(m.a, "news", "n1", at(9))], now=at(9))
            assert (
                await crm_conn.fetchval(
                    "SELECT count(*) FROM marketing_recredit_queue WHERE person_id = $1", m.a
                )
                > 0
            )
    finally:
        await pool.close()
    await same_as_raw(crm_conn)


async def test_the_automation_loop_folds_the_queue(crm_conn: asyncpg.Connection) -> None:
    await seed(crm_conn)
    await write_batch(crm_conn, [form(new_id(), "d@example.com", "DE", at(9))], now=at(9))
    assert await crm_conn.fetchval(QUEUED) > 0
    refolder = marketing.Refolder(CollectorRegistry())
    runner = automation.Runner(pool=None, handlers=[], jobs=[refolder])  # type: ignore[arg-type]
    assert await runner.step(crm_conn) > 0
    assert refolder.queued._value.get() == 0
    assert await crm_conn.fetchval(QUEUED) == 0


async def test_a_fold_that_fails_leaves_the_persons_queued_and_the_loop_going(
    crm_conn: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    await seed(crm_conn)
    queued = await crm_conn.fetchval(QUEUED)
    await crm_conn.execute("ALTER FUNCTION marketing_credit_now(uuid[]) RENAME TO marketing_credit_broken")
    registry = CollectorRegistry()
    refolder = marketing.Refolder(registry)
    runner = automation.Runner(pool=None, handlers=[], jobs=[refolder])  # type: ignore[arg-type]
    await runner.step(crm_conn)  # the pass ends normally (the seed's domain events handled), nothing folded
    assert "marketing credits could not be computed" in caplog.text
    assert await crm_conn.fetchval(QUEUED) == queued
    failed = registry.get_sample_value(
        "leadline_crm_marketing_recredit_failures_total", {"error": "UndefinedFunctionError"}
    )
    assert failed == 1
    assert registry.get_sample_value("leadline_crm_marketing_recredit_queued") > 0
    await crm_conn.execute("ALTER FUNCTION marketing_credit_broken(uuid[]) RENAME TO marketing_credit_now")
    assert await runner.step(crm_conn) == queued
    assert await crm_conn.fetchval(QUEUED) == 0


async def test_reports_read_at_once_do_not_wait_for_each_other(
    pg_dsn: str, crm_schema: str, crm_conn: asyncpg.Connection
) -> None:
    """A report folds the queue in a transaction of its own before it reads: one report's read, still open, does
    not hold the fold's lock, so a second report (with more queued meanwhile) runs to its end."""
    m = await seed(crm_conn)
    pool = await pg.create_pool(pg_dsn, crm_schema, min_size=1, max_size=1)
    q = reports.Query(MARCH.start, MARCH.end, model="last", by="ad")
    try:
        async with pool.acquire() as other, reports.custom_plans(other):
            await reports.ads(other, q)  # the first report's transaction stays open
            await write_batch(crm_conn, [click(m.a, "news", "n1", at(9))], now=at(9))  # more is queued
            second = reports.compute(crm_conn, "ads", q)
            rows = await asyncio.wait_for(second, timeout=5)
    finally:
        await pool.close()
    assert rows == await reports.compute(crm_conn, "ads", q, naive=True)
