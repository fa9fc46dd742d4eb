"""The collector benchmark's arithmetic: the median round and per-round shares of the bare handler."""

from __future__ import annotations

from benchmarks.collector_bench import events_rows, median_run, round_ratios, rows

from benchmarks import harness


def _run(rps: float, p99: float = 5.0) -> harness.WrkResult:
    return harness.WrkResult(
        requests_per_sec=rps,
        requests=int(rps * 5),
        duration_s=5.0,
        p50_ms=1.0,
        p75_ms=2.0,
        p90_ms=3.0,
        p99_ms=p99,
        socket_errors=0,
        non_2xx=0,
    )


def test_the_median_round_is_shown_with_its_own_latency() -> None:
    chosen = median_run([_run(9_000, 30.0), _run(15_000, 8.0), _run(16_000, 7.0)])
    assert chosen.requests_per_sec == 15_000
    assert chosen.p99_ms == 8.0


def test_shares_are_taken_round_by_round_and_their_median_is_reported() -> None:
    bare = [_run(30_000), _run(20_000), _run(30_000)]
    pixel = [_run(15_000), _run(16_000), _run(18_000)]
    ratios = round_ratios(pixel, bare)
    assert [round(r, 2) for r in ratios] == [0.5, 0.8, 0.6]
    table = rows("pixel", median_run(pixel), 30_000, target_ratio=0.75, p99_target=10, ratios=ratios)
    assert table[0]["baseline"] is not None
    assert table[0]["baseline"].startswith("60% of bare")
    assert "rounds: 50%, 80%, 60%" in table[0]["baseline"]


def test_a_batch_path_is_shown_beside_the_bare_handler_on_the_same_body() -> None:
    """The 150,000 events/s target is absolute; the bare handler that parses the same 20-event body and answers
    shows what that costs on the machine of the run."""
    table = events_rows("Segment /v1/batch", _run(5_000, 20.0), _run(12_500))
    assert table[0]["value"] == 100_000
    assert table[0]["baseline"] == (
        "5,000 req/s of 20 events; 40% of a bare handler parsing the same body (250,000 events/s)"
    )
