"""The service report (issue 14): cases and complaints by product and type over a range of days, the median
hours to the first answer the customer sees and to resolution, and the breaches of the service level.

Definitions (architecture.md §14): a case counts in the range it was opened in; its product is its purchase's,
else its contract's; the first response is its first customer-visible comment (``cases.first_response_at``, kept
when the comment is written, so the report reads one row per case rather than searching the comments of a million
cases: see benchmarks/service_bench.py for both); a breach is a case whose first response, or resolution when it
was resolved without one, came after its due time, or that is still unanswered past it.

The report reads the rollup of migration 0066 (``service_report_days``, kept by triggers as cases change): whole
months from its month rows and the days around them from its day rows, plus a live count of the cases the clock
has made late since (neither answered nor resolved, past due; a partial index holds only those). Counts, open
cases, breaches and the means are exact; the medians are estimated from the rollup's histograms, off by under one
bucket (9.1 %, service/histogram.py). :func:`raw_rows` is the report computed from the cases themselves, as it was
before the rollup: the tests hold the two to the same figures and the bench times both.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from leadline_crm.http.errors import BadRequest
from leadline_crm.service import histogram

DEFAULT_DAYS = 90
MAX_DAYS = 3660

# $1, $2: the range's first instant and the instant after it. {first_response}: the stored column, or (the naive
# way, for the bench) a search of the case's comments.
REPORT = """
SELECT coalesce(pr.name, '(no product)') AS product, c.type,
       count(*)::int AS cases,
       count(*) FILTER (WHERE c.status IN ('new', 'open', 'waiting'))::int AS open,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM {first_response} - c.created_at)) / 3600
           AS median_first_response_hours,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM c.resolved_at - c.created_at)) / 3600
           AS median_resolve_hours,
       count(*) FILTER (WHERE c.due_at < coalesce({first_response}, c.resolved_at, now()))::int AS breaches,
       avg(extract(epoch FROM {first_response} - c.created_at)) / 3600 AS mean_first_response_hours,
       avg(extract(epoch FROM c.resolved_at - c.created_at)) / 3600 AS mean_resolve_hours
  FROM cases c
  LEFT JOIN purchases pu ON pu.id = c.purchase_id
  LEFT JOIN service_contracts sc ON sc.id = c.contract_id
  LEFT JOIN products pr ON pr.id = coalesce(pu.product_id, sc.product_id)
 WHERE c.created_at >= $1 AND c.created_at < $2
 GROUP BY 1, 2
 ORDER BY 1, 2
"""
STORED = "c.first_response_at"
NAIVE = "(SELECT min(cc.created_at) FROM case_comments cc WHERE cc.case_id = c.id AND cc.public)"
COLUMNS = (
    "product",
    "type",
    "cases",
    "open",
    "median_first_response_hours",
    "median_resolve_hours",
    "breaches",
    "mean_first_response_hours",
    "mean_resolve_hours",
)

# The rollup's rows of the range summed per product and type. $1, $2: the range's first and last day; $3, $4: the
# whole months inside it (the first day of the first, of the month after the last; equal when there are none).
# {answer}, {resolve}: the histograms' sums, bucket by bucket (one sum per bucket is far cheaper than unnesting).
ROLLUP = """
SELECT coalesce(pr.name, '(no product)') AS product, r.type,
       sum(r.cases)::int AS cases, sum(r.open)::int AS open, sum(r.breaches)::int AS breaches,
       sum(r.answered) AS answered, sum(r.answer_seconds) AS answer_seconds, ARRAY[{answer}] AS answer_hist,
       sum(r.resolved) AS resolved, sum(r.resolve_seconds) AS resolve_seconds, ARRAY[{resolve}] AS resolve_hist
  FROM service_report_days r LEFT JOIN products pr ON pr.id = r.product_id
 WHERE (r.period = 'month' AND r.starts_on >= $3 AND r.starts_on < $4)
    OR (r.period = 'day' AND r.starts_on BETWEEN $1 AND $2 AND (r.starts_on < $3 OR r.starts_on >= $4))
 GROUP BY 1, 2
HAVING sum(r.cases) > 0
 ORDER BY 1, 2
"""

# The breaches the rollup cannot hold: cases opened in the range ($1, $2: instants) neither answered nor resolved
# and past their due time now (the partial index cases_unanswered holds exactly the unanswered ones).
LATE_NOW = """
SELECT coalesce(pr.name, '(no product)') AS product, c.type, count(*)::int AS late
  FROM cases c LEFT JOIN products pr ON pr.id = c.product_id
 WHERE c.first_response_at IS NULL AND c.resolved_at IS NULL AND c.due_at < now()
   AND c.created_at >= $1 AND c.created_at < $2
 GROUP BY 1, 2
"""


@dataclass(frozen=True)
class Range:
    """The days reported on, both included."""

    start: date
    end: date

    @classmethod
    def parse(cls, params: dict[str, str], today: date | None = None) -> Range:
        """From ``from`` and ``to`` (ISO dates; default: the 90 days up to today, UTC); 422 naming the bad one."""
        end = _day(params, "to", today or datetime.now(UTC).date())
        start = _day(params, "from", end - timedelta(days=DEFAULT_DAYS - 1))
        if start > end:
            raise BadRequest("from must not be after to")
        if (end - start).days >= MAX_DAYS:
            raise BadRequest(f"the range may span at most {MAX_DAYS} days")
        return cls(start, end)

    def bounds(self) -> tuple[datetime, datetime]:
        return (
            datetime.combine(self.start, time(), UTC),
            datetime.combine(self.end + timedelta(days=1), time(), UTC),
        )

    def months(self) -> tuple[date, date]:
        """The whole calendar months inside the range: the first day of the first, and of the month after the last
        (the same day twice when there are none)."""
        first = self.start if self.start.day == 1 else _next_month(self.start)
        after = (self.end + timedelta(days=1)).replace(day=1)
        return (first, after) if first < after else (first, first)


def _next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def _day(params: dict[str, str], name: str, default: date) -> date:
    value = params.get(name)
    if not value:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name}: expected a date like 2026-11-30") from None


def _number(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)


async def rows(conn: asyncpg.Connection, span: Range) -> list[dict[str, Any]]:
    """The report's rows, one per product and type, from the rollup (medians estimated, see the module's doc)."""
    edges: list[float] = await conn.fetchval("SELECT service_report_edges()")
    buckets = range(1, len(edges) + 2)
    sql = ROLLUP.format(answer=", ".join(f"sum(r.answer_hist[{i}])" for i in buckets),
                        resolve=", ".join(f"sum(r.resolve_hist[{i}])" for i in buckets))  # fmt: skip
    found = await conn.fetch(sql, span.start, span.end, *span.months())
    late = {(r["product"], r["type"]): r["late"] for r in await conn.fetch(LATE_NOW, *span.bounds())}
    return [
        {"product": r["product"], "type": r["type"], "cases": r["cases"], "open": r["open"],
         "median_first_response_hours": _hours(histogram.median(r["answer_hist"], edges)),
         "median_resolve_hours": _hours(histogram.median(r["resolve_hist"], edges)),
         "breaches": r["breaches"] + late.get((r["product"], r["type"]), 0),
         "mean_first_response_hours": _mean_hours(r["answer_seconds"], r["answered"]),
         "mean_resolve_hours": _mean_hours(r["resolve_seconds"], r["resolved"])}
        for r in found
    ]  # fmt: skip


async def raw_rows(conn: asyncpg.Connection, span: Range, naive: bool = False) -> list[dict[str, Any]]:
    """The report computed from the cases (exact medians; ``naive``: first responses searched in the comments)."""
    sql = REPORT.format(first_response=NAIVE if naive else STORED)
    found = await conn.fetch(sql, *span.bounds())
    return [
        {**dict(r), **{key: _number(r[key]) for key in COLUMNS[4:6] + COLUMNS[7:]}}
        for r in found
    ]  # fmt: skip


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 2)


def _mean_hours(seconds: Decimal, count: int) -> float | None:
    return round(float(seconds) / count / 3600, 2) if count else None


def by_type(report: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Cases, open ones and breaches per type, over every product (complaints among them)."""
    out: dict[str, dict[str, int]] = {}
    for r in report:
        total = out.setdefault(r["type"], {"cases": 0, "open": 0, "breaches": 0})
        for key in total:
            total[key] += r[key]
    return out


def to_csv(report: list[dict[str, Any]]) -> str:
    """The rows as CSV, the JSON's columns in order (empty cells where a median has no cases to stand on)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for r in report:
        writer.writerow([_cell(r[c]) for c in COLUMNS])
    return buffer.getvalue()


def _cell(value: Any) -> str:
    """A cell as JSON shows it; text a spreadsheet would run as a formula (a product named "=…") gets a '."""
    if value is None:
        return ""
    if isinstance(value, int | float | Decimal):
        return str(value)
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
