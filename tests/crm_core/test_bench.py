"""benchmarks/crm_bench.py runs end to end (small sizes) and reports every figure `make bench` writes down."""

from __future__ import annotations

import pytest

from benchmarks import crm_bench

pytestmark = pytest.mark.integration


async def test_the_crm_benchmark_measures_ingestion_naive_writes_and_timeline_reads(
    kafka_bootstrap: str, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(crm_bench, "EVENTS", 3000)
    monkeypatch.setattr(crm_bench, "NAIVE_EVENTS", 200)
    monkeypatch.setattr(crm_bench, "TIMELINE_TOUCHPOINTS", 600)
    result = await crm_bench.run(kafka_bootstrap, pg_dsn)
    rows = {row["metric"]: row for row in result["rows"]}
    assert len(rows) == 7
    assert all(row["value"] > 0 for row in rows.values()), [(m, r["value"]) for m, r in rows.items()]
    walk = next(r for m, r in rows.items() if m.startswith("whole timeline"))
    assert "601 items" in walk["metric"]  # every touchpoint plus the stage move to lead
    assert "3,000 enriched events" in result["notes"]
