"""Fixtures of crm-core's tests: a migrated schema of the test's own and a connection to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from leadline_crm.app import MIGRATIONS
from leadline_shared import pg


@pytest.fixture
async def crm_conn(pg_dsn: str, schema: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to a freshly migrated CRM schema (jsonb as Python objects, as in the service's pool)."""
    await pg.migrate(pg_dsn, schema, MIGRATIONS)
    pool = await pg.create_pool(pg_dsn, schema, min_size=1, max_size=1)
    async with pool.acquire() as conn:
        yield conn
    await pool.close()
