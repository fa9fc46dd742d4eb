"""benchmarks/crm_bench.py runs end to end (small sizes) and reports every figure `make bench` writes down."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from benchmarks import crm_bench

pytestmark = pytest.mark.integration


async def test_the_crm_benchmark_measures_ingestion_naive_writes_and_timeline_reads(
    kafka_bootstrap: str, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(crm_bench, "EVENTS", 3000)
    monkeypatch.setattr(crm_bench, "NAIVE_EVENTS", 200)
    monkeypatch.setattr(crm_bench, "TIMELINE_TOUCHPOINTS", 600)
    monkeypatch.setattr(crm_bench, "PARTITION_EVENTS", 2000)
    monkeypatch.setattr(crm_bench, "TIMELINE_CALLS", 20)
    monkeypatch.setattr(crm_bench, "REPORT_CALLS", 5)
    result = await crm_bench.run(kafka_bootstrap, pg_dsn)
    rows = {row["metric"]: row for row in result["rows"]}
    assert len(rows) == 17
    assert all(row["value"] > 0 for row in rows.values()), [(m, r["value"]) for m, r in rows.items()]
    walk = next(r for m, r in rows.items() if m.startswith("whole timeline"))
    assert "601 items" in walk["metric"]  # every touchpoint plus the stage move to lead
    assert "3,000 enriched events" in result["notes"]
    as_is = [m for m in rows if m.startswith("touchpoints as is: ")]
    by_month = [m for m in rows if m.startswith("touchpoints by month (")]
    assert len(as_is) == len(by_month) == 5  # each figure of the partitioning comparison, both ways
    assert all(rows[m]["baseline"].endswith("x as is") for m in by_month)
    assert "2,600 events over 365 days" in result["notes"]


async def test_partition_by_month_covers_the_range_and_keeps_the_indexes(
    crm_conn: asyncpg.Connection,
) -> None:
    """The comparison is only fair if the partitioned copy has the same columns and indexes on every month."""
    first = datetime(2025, 11, 20, tzinfo=UTC)
    assert await crm_bench.partition_by_month(crm_conn, first, datetime(2026, 11, 2, tzinfo=UTC)) == 13
    parts = await crm_conn.fetch(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound FROM pg_inherits AS i"
        " JOIN pg_class AS c ON c.oid = i.inhrelid WHERE i.inhparent = 'touchpoints'::regclass ORDER BY 1"
    )
    assert [p["relname"] for p in parts][0::12] == ["touchpoints_2025_11", "touchpoints_2026_11"]
    assert "'2025-11-01 00:00:00+00') TO ('2025-12-01 00:00:00+00')" in parts[0]["bound"]
    indexes = await crm_conn.fetch(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'touchpoints_2026_03'"
    )
    defs = " ".join(r["indexdef"] for r in indexes)
    assert "(person_id, occurred_at DESC, event_id DESC)" in defs
    assert "(anon_id, occurred_at DESC, event_id DESC) WHERE (anon_id IS NOT NULL)" in defs
    assert "(event_id, occurred_at)" in defs
