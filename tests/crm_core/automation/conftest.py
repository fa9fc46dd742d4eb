"""Helpers of the automation tests: a direct database connection beside the running app, and waiting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient


@pytest.fixture
async def db(client: TestClient, pg_dsn: str, schema: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the running app's schema (after the app migrated it)."""
    conn = await asyncpg.connect(pg_dsn, server_settings={"search_path": schema})
    yield conn
    await conn.close()


async def until(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 20.0) -> Any:
    """Wait until ``check`` returns something truthy (the loop is asynchronous); fail naming ``what``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if got := await check():
            return got
        await asyncio.sleep(0.1)
    pytest.fail(f"{what}: not within {timeout}s")
