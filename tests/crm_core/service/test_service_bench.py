"""benchmarks/service_bench.py runs end to end (small sizes) and reports every figure `make bench` writes down."""

from __future__ import annotations

import pytest

from benchmarks import service_bench

pytestmark = pytest.mark.integration


async def test_the_service_benchmark_times_kb_search_the_queue_the_report_and_their_naive_baselines(
    kafka_bootstrap: str, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service_bench, "CASES", 3000)
    monkeypatch.setattr(service_bench, "ARTICLES", 400)
    monkeypatch.setattr(service_bench, "CUSTOMERS", 100)
    monkeypatch.setattr(service_bench, "CALLS", 6)
    result = await service_bench.run(kafka_bootstrap, pg_dsn)
    rows = {row["metric"]: row for row in result["rows"]}
    assert len(rows) == 17
    assert all(row["value"] > 0 for row in rows.values()), [(m, r["value"]) for m, r in rows.items()]
    assert any(m.startswith("KB search over 400 articles") for m in rows)
    assert any(m.startswith("case queue, overdue (3,000 cases)") for m in rows)
    assert any(m.startswith("naive: KB search with ILIKE") for m in rows)
    assert any(m.startswith("service report, two years (API) (3,000 cases)") for m in rows)
    assert any(m.startswith("naive: the service report for two years") for m in rows)
    assert any(m.startswith("the report from the cases (stored first responses, no rollup)") for m in rows)
    assert any(m.startswith("public status page lookup") for m in rows)
    assert "3,000 cases, 400 knowledge base articles" in result["title"]


def test_the_articles_and_queries_are_the_same_every_run() -> None:
    """The figures of two runs compare only if they searched the same text for the same words."""
    assert service_bench.articles(50) == service_bench.articles(50)
    assert service_bench.queries() == service_bench.queries()
    assert len({title for title, _, _, _ in service_bench.articles(2000)}) == 2000  # titles are unique
