"""Fixtures of the webhook tests: a real aiohttp receiver on a free loopback port that verifies every request
with the Standard Webhooks reference library, a pool on the test's migrated schema, and a clock tests move."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from leadline_crm.app import MIGRATIONS
from leadline_shared import pg


@dataclass
class Receiver:
    """What the receiver got: every request (id, body), verified with ``secrets`` (any one must match)."""

    secrets: list[str] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0
    received: list[tuple[str, bytes]] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)
    url: str = ""
    hostname_url: str = ""

    @property
    def ids(self) -> set[str]:
        return {i for i, _ in self.received}

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.delay:
            await asyncio.sleep(self.delay)
        headers = dict(request.headers)
        if self.secrets and not any(self._verifies(s, body, headers) for s in self.secrets):
            self.bad.append(headers.get("webhook-id", "?"))
            return web.Response(status=401, text="bad signature")
        if self.status >= 300:
            return web.Response(status=self.status, text="receiver is down " + "x" * 2000)
        self.received.append((headers["webhook-id"], body))
        return web.Response(text="ok")

    @staticmethod
    def _verifies(secret: str, body: bytes, headers: dict[str, str]) -> bool:
        try:
            Webhook(secret).verify(body, headers)
        except WebhookVerificationError:
            return False
        return True


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


@dataclass
class Clock:
    """A clock the test moves (the dispatcher's schedule reads it; signatures keep the real time)."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: Any) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()
