"""Fixtures of the webhook tests: a real aiohttp receiver on a free loopback port that verifies every request
with the Standard Webhooks reference library, a pool on the test's migrated schema, and a clock tests move."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from crm_core.webhooks.helpers import KEYS, Clock, Receiver
from leadline_crm.settings import CrmSettings
from leadline_shared import pg


@pytest.fixture
def crm_settings(crm_settings: CrmSettings) -> CrmSettings:
    """crm-core's test settings with keys that seal the webhook secrets (LEADLINE_WEBHOOK_KEYS)."""
    return dataclasses.replace(crm_settings, webhook_keys=KEYS)


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
async def pool(pg_dsn: str, crm_schema: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a freshly migrated CRM schema (the one crm_settings names, so a test may run both)."""
    pool = await pg.create_pool(pg_dsn, crm_schema, min_size=1, max_size=6)
    yield pool
    await pool.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()
