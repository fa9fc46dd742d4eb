"""Fixtures of the webhook tests: a real aiohttp receiver on a free loopback port that verifies every request
with the Standard Webhooks reference library, a pool on the test's migrated schema, and a clock tests move."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from crm_core.webhooks.helpers import Clock, Receiver
from leadline_crm.app import MIGRATIONS
from leadline_shared import pg


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """The receiver, on 127.0.0.1 (``url``) and as ``localhost`` (``hostname_url``)."""
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    rec.url = f"http://127.0.0.1:{server.port}/hook"
    rec.hostname_url = f"http://localhost:{server.port}/hook"
    yield rec
    await server.close()


@pytest.fixture
async def pool(pg_dsn: str, schema: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a freshly migrated CRM schema."""
    await pg.migrate(pg_dsn, schema, MIGRATIONS)
    pool = await pg.create_pool(pg_dsn, schema, min_size=1, max_size=6)
    yield pool
    await pool.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()
