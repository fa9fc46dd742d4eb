"""benchmarks/sales_bench.py runs end to end (small sizes) and reports every figure `make bench` writes down."""

from __future__ import annotations

import pytest

from benchmarks import sales_bench, workspace_bench

pytestmark = pytest.mark.integration


async def test_the_sales_benchmark_times_the_board_the_list_and_a_naive_board(
    kafka_bootstrap: str, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workspace_bench, "PERSONS", 4000)
    monkeypatch.setattr(workspace_bench, "FORMS", 100)
    monkeypatch.setattr(workspace_bench, "PERSON_TOUCHPOINTS", 10)
    monkeypatch.setattr(sales_bench, "DEALS", 1500)
    monkeypatch.setattr(sales_bench, "COMPANIES", 50)
    monkeypatch.setattr(sales_bench, "CALLS", 3)
    monkeypatch.setattr(sales_bench, "IMPORT_ROWS", 300)
    monkeypatch.setattr(sales_bench, "NAIVE_ROWS", 100)
    result = await sales_bench.run(kafka_bootstrap, pg_dsn)
    rows = {row["metric"]: row for row in result["rows"]}
    assert len(rows) == 17
    assert all(row["value"] > 0 for row in rows.values()), [(m, r["value"]) for m, r in rows.items()]
    assert any(m.startswith("naive board: every deal of the pipeline at once (1,500 rows") for m in rows)
    assert any(m.startswith("CSV export of every deal (1,500 rows)") for m in rows)
    assert "1,500 deals" in result["title"]
    people = rows["CSV import of 300 people (API, commit, 0.0 MB)"]
    assert people["unit"].startswith("rows/s")
    assert "one INSERT per row" in people["baseline"]
    assert any(m.startswith("CSV import of 60 deals") for m in rows)
    assert any(m.startswith("CSV import of 300 people with assignment rules") for m in rows)
    assert any(m.startswith("naive import: one INSERT round trip per row (100 people rows") for m in rows)
