"""The forecast's method (marketing/forecast.py): a synthetic seasonal series' next weeks land within the
prediction interval, the back-test error is reported, and a short history falls back to Holt's linear trend."""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from leadline_crm.marketing import reports
from leadline_crm.marketing.forecast import fit, forecast


def seasonal(weeks: int, season: int, seed: int = 7) -> list[float]:
    noise = random.Random(seed)
    return [200 + 1.5 * t + 40 * math.sin(2 * math.pi * t / season) + noise.gauss(0, 6) for t in range(weeks)]


@pytest.mark.parametrize(("season", "weeks"), [(4, 40), (13, 60), (52, 112)])
def test_a_seasonal_series_lands_within_its_interval(season: int, weeks: int) -> None:
    series = seasonal(weeks, season)
    history, future = series[:-8], series[-8:]
    result = forecast(history, 8, season, level=95)
    assert f"season {season} weeks" in result.method
    for low, actual, high in zip(result.lower, future, result.upper, strict=True):
        assert low <= actual <= high
    assert result.mae is not None
    assert result.mae < 25  # the noise is 6; without the season the error would be near 40
    assert result.mape is not None
    assert result.mape < 0.1


def test_the_interval_widens_with_the_horizon_and_short_histories_use_holt() -> None:
    result = forecast([10, 12, 14, 15, 18, 20, 21, 24], 6, 52)
    assert result.method.startswith("Holt linear trend")
    widths = [h - lo for lo, h in zip(result.lower, result.upper, strict=True)]
    assert widths == sorted(widths)
    assert result.points[0] > 24
    assert fit([5.0], 52).level == 5.0


@pytest.mark.integration
async def test_the_weekly_forecast_reads_leads_and_revenue_per_week(crm_conn: asyncpg.Connection) -> None:
    """Leads from the stage rollup and revenue from purchases, per ISO week, then 8 weeks ahead."""
    monday = date(2026, 1, 5)
    for week, count in enumerate(int(20 + 10 * math.sin(t / 2)) for t in range(30)):
        at = datetime.combine(monday + timedelta(weeks=week, days=2), datetime.min.time(), UTC)
        await crm_conn.execute(
            "WITH p AS (INSERT INTO persons (person_id, first_seen, last_seen)"
            " SELECT gen_random_uuid(), $1, $1 FROM generate_series(1, $2) RETURNING person_id)"
            " INSERT INTO stage_transitions (person_id, from_stage, to_stage, at, reason)"
            " SELECT person_id, 'anonymous', 'lead', $1, 'test' FROM p",
            at,
            count,
        )
    rows, meta = await reports.weekly_forecast(crm_conn, reports.Query(date(2026, 1, 1), date(2026, 8, 2)))
    actual = [r for r in rows if r["kind"] == "actual"]
    ahead = [r for r in rows if r["kind"] == "forecast"]
    assert actual[0]["week"] == "2026-01-05"
    assert len(actual) == 30
    assert actual[0]["leads"] == 20
    assert [r["week"] for r in ahead][:2] == ["2026-08-03", "2026-08-10"]
    assert len(ahead) == 8
    assert all(r["leads_low"] <= r["leads"] <= r["leads_high"] for r in ahead)
    assert meta["leads"]["mae"] is not None
    assert meta["history_weeks"] == 30


@pytest.mark.integration
async def test_the_weekly_counts_follow_leads_and_purchases_as_they_change(
    crm_conn: asyncpg.Connection,
) -> None:
    """marketing_weekly (migration 0069): a lead and two purchases counted in their ISO weeks, a purchase moved to
    another week and its quantity changed, a purchase deleted; an emptied week has no row; the forecast's history
    equals the one computed from the raw tables."""
    person = await crm_conn.fetchval(
        "INSERT INTO persons (person_id, first_seen, last_seen) VALUES (gen_random_uuid(), now(), now())"
        " RETURNING person_id"
    )
    await crm_conn.execute(
        "INSERT INTO stage_transitions (person_id, from_stage, to_stage, at, reason)"
        " VALUES ($1, 'anonymous', 'lead', '2026-03-04T23:30:00Z', 'test')",
        person,
    )
    product = await crm_conn.fetchval(
        "INSERT INTO products (sku, name, list_price) VALUES ('WK1', 'Weekly', 10) RETURNING id"
    )
    await crm_conn.execute(
        "INSERT INTO purchases (person_id, product_id, quantity, purchased_on, price_paid)"
        " VALUES ($1, $2, 2, '2026-03-08', 9.50), ($1, $2, 1, '2026-03-09', 10)",
        person,
        product,
    )
    weekly = "SELECT week::text, leads, purchases, revenue::float8 FROM marketing_weekly ORDER BY week"
    assert [tuple(r) for r in await crm_conn.fetch(weekly)] == [
        ("2026-03-02", 1, 1, 19.0),
        ("2026-03-09", 0, 1, 10.0),
    ]
    await crm_conn.execute(
        "UPDATE purchases SET purchased_on = '2026-03-16', quantity = 3 WHERE price_paid = 10"
    )
    assert [tuple(r) for r in await crm_conn.fetch(weekly)] == [
        ("2026-03-02", 1, 1, 19.0),
        ("2026-03-16", 0, 1, 30.0),
    ]
    query = reports.Query(date(2026, 3, 1), date(2026, 3, 31))
    assert await reports.weekly_forecast(crm_conn, query) == await reports.weekly_forecast(
        crm_conn, query, naive=True
    )
    await crm_conn.execute("DELETE FROM purchases WHERE price_paid = 10")
    assert [tuple(r) for r in await crm_conn.fetch(weekly)] == [("2026-03-02", 1, 1, 19.0)]
