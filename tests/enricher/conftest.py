"""Fixtures shared by the enricher's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from leadline_enricher.app import MIGRATIONS
from leadline_shared import pg


@pytest.fixture
async def pool(pg_dsn: str, schema: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on this test's freshly migrated identity schema (the graph's tables)."""
    await pg.migrate(pg_dsn, schema, MIGRATIONS)
    p = await pg.create_pool(pg_dsn, schema, max_size=4)
    yield p
    await p.close()
