"""Tasks that are due: what the rep's home page and the sales dashboard list (people/home.py asks through
:func:`overdue`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg

from leadline_crm.sales import queries


async def overdue(pool: asyncpg.Pool, owner: uuid.UUID | None, limit: int) -> list[asyncpg.Record]:
    """Open tasks past their due time (or the end of their snooze), the oldest first; everyone's when ``owner`` is
    None (an admin's home)."""
    rows: list[asyncpg.Record] = await pool.fetch(queries.TASKS_DUE, owner, datetime.now(UTC), limit)
    return rows
