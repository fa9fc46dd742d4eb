"""Sales volume per rep and period: deals won and their value, purchases and revenue, activities logged (the API
and the dashboard)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import asyncpg

from leadline_crm.sales import queries


async def volume(pool: asyncpg.Pool, since: date, until: date, period: str) -> list[asyncpg.Record]:
    """Per rep and ``period`` from ``since`` to ``until`` (exclusive): deals won and their value, purchases and
    revenue, activities logged."""
    start = datetime(since.year, since.month, since.day, tzinfo=UTC)
    end = datetime(until.year, until.month, until.day, tzinfo=UTC)
    rows: list[asyncpg.Record] = await pool.fetch(queries.VOLUME, start, end, period)
    return rows
