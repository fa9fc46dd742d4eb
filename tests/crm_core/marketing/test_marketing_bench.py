"""benchmarks/marketing_bench.py runs end to end (small sizes) and reports each report's figure at both sizes,
with the naive computation beside the ones it times, over seeded ad impressions at a believable ratio to the
clicks."""

from __future__ import annotations

import re

import pytest

from benchmarks import harness, marketing_bench

pytestmark = pytest.mark.integration


async def test_the_marketing_benchmark_times_every_report_twice(
    kafka_bootstrap: str, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(marketing_bench, "TOUCHPOINTS", 40_000)
    monkeypatch.setattr(marketing_bench, "FIRST_STAGE", 20_000)
    monkeypatch.setattr(marketing_bench, "PERSONS", 4_000)
    monkeypatch.setattr(marketing_bench, "PURCHASES", 2_000)
    monkeypatch.setattr(marketing_bench, "CHUNK", 10_000)
    monkeypatch.setattr(marketing_bench, "CALLS", 3)
    result = await marketing_bench.run(kafka_bootstrap, pg_dsn)
    rows = {row["metric"]: row for row in result["rows"]}
    assert len(rows) == 2 * len(marketing_bench.QUERIES)
    assert all(row["value"] > 0 for row in rows.values())
    naive = [
        m for m, r in rows.items() if r["baseline"] and r["baseline"].startswith("naive from raw tables")
    ]
    assert len(naive) == 2 * len(marketing_bench.NAIVE)
    assert "all 40,000 touchpoints were seeded" in result["notes"]
    clicks, shown = (
        int(re.search(rf"([\d,]+) {what}", result["notes"])[1].replace(",", ""))  # type: ignore[index]
        for what in ("ad clicks", "ad impressions")
    )
    assert 80 <= shown / clicks <= 250, (clicks, shown)  # a click-through rate of 0.4 to 1.25 %
    assert "marketing_bench" in harness.MODULES
