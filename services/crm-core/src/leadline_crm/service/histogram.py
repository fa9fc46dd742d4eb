"""Medians from the service report's histograms (migration 0066): the report sums per-day and per-month counts of
durations in fixed buckets instead of sorting every case of its range, so its medians are estimates.

The buckets (``service_report_edges()`` in PostgreSQL, read by the report with its rows, so the edges live in one
place): under a minute, then eight per doubling from one minute to 397 days (each 2^(1/8), 9.05 %, wider than
the one before), then 397 days or more. An order statistic is placed inside the bucket that holds it, its cases spread
evenly over the bucket, so the estimate and the true value share a bucket: the error is under one bucket's width,
under 9.1 % of the true value (:data:`RELATIVE_ERROR`), under a minute below a minute; 397 days or more is reported
as 397 days. The median is PostgreSQL's ``percentile_cont(0.5)`` (the mean of the two middle values of an even
count), taken from two such estimates, so the same bound holds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: The bound on the estimate's error relative to the true value, for values of a minute or more.
RELATIVE_ERROR = 2 ** (1 / 8) - 1


def median(counts: Sequence[int], edges: Sequence[float]) -> float | None:
    """The median of the durations counted in ``counts`` (bucket ``i`` holds values from ``edges[i-1]`` up to
    ``edges[i]``; the first from 0, the last from ``edges[-1]`` up), or None when there are none."""
    n = sum(counts)
    if n <= 0:
        return None
    position = (n - 1) / 2
    low = math.floor(position)
    first = _nth(counts, edges, low)
    if position == low:
        return first
    return (first + _nth(counts, edges, low + 1)) / 2


def _nth(counts: Sequence[int], edges: Sequence[float], k: int) -> float:
    """The estimated ``k``-th smallest value (from 0): its bucket's cases spread evenly over the bucket."""
    seen = 0
    for bucket, count in enumerate(counts):
        if count > 0 and k < seen + count:
            start = edges[bucket - 1] if bucket > 0 else 0.0
            end = edges[bucket] if bucket < len(edges) else start
            return start + (k - seen + 0.5) / count * (end - start)
        seen += max(count, 0)
    raise ValueError(f"no value {k} among {seen}")
