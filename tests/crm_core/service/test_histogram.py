"""The service report's medians from histogram buckets (service/histogram.py): exact for a single value's bucket
middle, PostgreSQL's percentile_cont for even counts, and never further from the true median than the documented
bound."""

from __future__ import annotations

import random
import statistics

import pytest

from leadline_crm.service import histogram

# As service_report_edges() in migration 0066: 60 s * 2^(k/8), k = 0..153.
EDGES = [60 * 2 ** (k / 8) for k in range(154)]


def _counts(values: list[float]) -> list[int]:
    counts = [0] * (len(EDGES) + 1)
    for v in values:
        counts[sum(1 for e in EDGES if e <= v)] += 1
    return counts


def test_no_values_have_no_median() -> None:
    assert histogram.median([0] * (len(EDGES) + 1), EDGES) is None


@pytest.mark.parametrize("seed", range(20))
def test_the_estimate_stays_within_one_bucket_of_the_true_median(seed: int) -> None:
    r = random.Random(seed)
    values = [r.lognormvariate(10, 2) for _ in range(r.randrange(1, 400))]  # seconds to months
    true = statistics.median(values)
    estimate = histogram.median(_counts(values), EDGES)
    assert estimate is not None
    assert abs(estimate - true) <= max(true * histogram.RELATIVE_ERROR, 60), (true, estimate)


def test_an_even_count_takes_the_mean_of_the_two_middle_values() -> None:
    estimate = histogram.median(_counts([2 * 3600, 10 * 3600]), EDGES)
    assert estimate == pytest.approx(6 * 3600, rel=histogram.RELATIVE_ERROR)
    assert histogram.median(_counts([30, 3 * 3600, 4 * 3600, 10 * 3600 * 24 * 500]), EDGES) == pytest.approx(
        3.5 * 3600, rel=histogram.RELATIVE_ERROR
    )


def test_a_year_and_more_is_reported_as_the_last_edge() -> None:
    assert histogram.median(_counts([4e7]), EDGES) == EDGES[-1]
