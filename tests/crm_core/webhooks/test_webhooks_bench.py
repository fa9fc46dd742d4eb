"""The webhook benchmark runs end to end on a small queue: every delivery reaches the receiver, and the result has
the harness's shape with the straight-aiohttp baseline beside each figure."""

from __future__ import annotations

import pytest

from benchmarks import webhooks_bench

pytestmark = pytest.mark.integration


async def test_the_benchmark_delivers_everything_and_reports_beside_a_baseline(
    kafka_bootstrap: str, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhooks_bench, "DELIVERIES", 300)
    result = await webhooks_bench.run(kafka_bootstrap, pg_dsn)
    assert [r["metric"] for r in result["rows"]] == [
        "deliveries",
        "signing to send p99",
        "signing to answer p99",
    ]
    assert all(r["value"] > 0 for r in result["rows"])
    assert "straight aiohttp" in result["rows"][0]["baseline"]
    assert "straight aiohttp" in result["rows"][2]["baseline"]
    assert result["rows"][1]["value"] <= result["rows"][2]["value"]  # on the wire before the answer
    assert "counted 300; 0 not delivered" in result["notes"]
