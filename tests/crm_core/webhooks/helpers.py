"""The webhook tests' receiver (a real aiohttp app that verifies each request with the Standard Webhooks reference
library and deduplicates by webhook-id) and a clock the tests move."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from cryptography.fernet import Fernet
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from leadline_crm.webhooks.sealing import Sealer

KEYS = f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}"
"""The tests' LEADLINE_WEBHOOK_KEYS: a current key and a retired one."""
SEALER = Sealer.of(KEYS)


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


@dataclass
class Clock:
    """Real time plus an offset the test moves forward (the dispatcher's schedule reads it; signatures keep the
    real time)."""

    offset: timedelta = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: Any) -> None:
        self.offset += timedelta(**delta)
