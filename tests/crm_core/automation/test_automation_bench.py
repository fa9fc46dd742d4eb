"""benchmarks/automation_bench.py runs end to end (small sizes): every figure is there, the loop drained every
event, and the rules did act."""

from __future__ import annotations

import pytest

from benchmarks import automation_bench

pytestmark = pytest.mark.integration


async def test_the_automation_benchmark_times_evaluation_and_the_loop_beside_a_rule_free_baseline(
    kafka_bootstrap: str, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(automation_bench, "PERSONS", 500)
    monkeypatch.setattr(automation_bench, "EVENTS", 2000)
    result = await automation_bench.run(kafka_bootstrap, pg_dsn)
    rows = {row["metric"]: row for row in result["rows"]}
    assert len(rows) == 4
    assert all(row["value"] > 0 for row in rows.values()), rows
    e2e = rows["end to end: domain events → runs and actions committed, rows deleted"]
    assert e2e["baseline"].endswith("events/s with 0 rules")
    assert "100 active workflow rules over 2,000 domain events" in result["title"]
