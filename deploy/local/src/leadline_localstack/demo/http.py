"""The demo's two HTTP clients: crm-core's REST API (as an admin) and the collector (as browsers, mail systems and
the site's backend would call it)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import aiohttp


class DemoError(RuntimeError):
    """The stack answered something the demo cannot go on from (the message says what and where)."""


_RETRY_STATUSES = frozenset({502, 503, 504})


class Api:
    """crm-core's /api/v1 with an admin token; retries while the service is briefly unavailable."""

    def __init__(self, session: aiohttp.ClientSession, base: str, token: str) -> None:
        self.session = session
        self.base = base.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}

    async def call(
        self, method: str, path: str, body: Any = None, params: Mapping[str, str] | None = None
    ) -> tuple[int, Any]:
        """(status, decoded JSON or None); raises :class:`DemoError` when the service stays unreachable."""
        for attempt in range(8):
            try:
                async with self.session.request(
                    method, self.base + path, json=body, params=params, headers=self.headers
                ) as resp:
                    if resp.status in _RETRY_STATUSES:
                        await asyncio.sleep(0.5 * (attempt + 1))
                        continue
                    doc = await resp.json(content_type=None) if resp.status != 204 else None
                    return resp.status, doc
            except (aiohttp.ClientConnectionError, TimeoutError):
                await asyncio.sleep(0.5 * (attempt + 1))
        raise DemoError(f"crm-core at {self.base} did not answer {method} {path}")

    async def get(self, path: str, **params: str) -> Any:
        """The document at ``path``, or None on 404."""
        status, doc = await self.call("GET", path, params=params)
        if status == 404:
            return None
        _expect(status, doc, (200,), "GET", path)
        return doc

    async def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        status, doc = await self.call("POST", path, body)
        _expect(status, doc, (201,), "POST", path)
        created: dict[str, Any] = doc
        return created

    async def patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        status, doc = await self.call("PATCH", path, body)
        _expect(status, doc, (200,), "PATCH", path)
        changed: dict[str, Any] = doc
        return changed

    async def all(self, path: str, **params: str) -> list[dict[str, Any]]:
        """Every item of a paged list."""
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = await self.get(path, limit="500", **params, **({"cursor": cursor} if cursor else {}))
            if page is None:
                raise DemoError(f"GET {path}: not found (is crm-core at {self.base} this version?)")
            items += page["items"]
            cursor = page.get("next")
            if not cursor:
                return items


def _expect(status: int, doc: Any, ok: tuple[int, ...], method: str, path: str) -> None:
    if status not in ok:
        detail = doc.get("detail") if isinstance(doc, dict) else doc
        if status == 401:
            detail = "the API token was refused (make up writes an admin token to .run/admin.token)"
        raise DemoError(f"{method} {path}: {status} {detail}")


class Browser:
    """What one visitor's browser sends: its user agent and cookie, and the address a trusted proxy reports."""

    def __init__(self, user_agent: str, cookie: str | None, ip: str, locale: str = "en-US") -> None:
        self.headers = {"User-Agent": user_agent, "X-Forwarded-For": ip, "Accept-Language": locale}
        if cookie is not None:
            self.headers["Cookie"] = f"ll_vid={cookie}"


class Collector:
    """The collector's capture routes, called as browsers, mail systems and the site's backend call them."""

    def __init__(self, session: aiohttp.ClientSession, base: str, config_wait: float = 60.0) -> None:
        self.session = session
        self.base = base.rstrip("/")
        self.config_wait = config_wait
        """How long a form, ad or write key may stay unknown: crm-core's outbox brings it within a second."""

    async def _send(
        self, method: str, path: str, headers: Mapping[str, str], *, waits_for_config: bool = False, **kw: Any
    ) -> aiohttp.ClientResponse:
        """Send, retrying while the collector is unreachable, rate-limits (429 with Retry-After) or, for routes
        that need crm-core's configuration, does not know the form, ad or write key yet (404/401)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config_wait
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self.session.request(
                    method, self.base + path, headers=headers, allow_redirects=False, **kw
                ) as resp:
                    await resp.read()
                    if resp.status == 429:
                        await asyncio.sleep(float(resp.headers.get("Retry-After", "1")))
                        continue
                    unknown = resp.status in (401, 404) and waits_for_config
                    if (unknown or resp.status in _RETRY_STATUSES) and loop.time() < deadline:
                        await asyncio.sleep(min(2.0, 0.2 * attempt))
                        continue
                    if resp.status >= 400:
                        raise DemoError(
                            f"collector {method} {path}: {resp.status} {(await resp.text())[:300]}"
                        )
                    return resp
            except (aiohttp.ClientConnectionError, TimeoutError) as exc:
                if loop.time() >= deadline:
                    raise DemoError(f"the collector at {self.base} does not answer: {exc!r}") from None
                await asyncio.sleep(0.5)

    async def beacon(self, browser: Browser, items: list[dict[str, Any]], sent_at: str) -> None:
        """``POST /e``: a batch of the snippet's events (page views, a captured form)."""
        headers = {**browser.headers, "Content-Type": "text/plain;charset=UTF-8"}  # as sendBeacon sends it
        await self._send("POST", "/e", headers, data=json.dumps({"sent_at": sent_at, "batch": items}))

    async def pixel(self, browser: Browser, params: dict[str, str]) -> None:
        """``GET /p.gif``: a page view of a visitor without JavaScript."""
        await self._send("GET", "/p.gif?" + urlencode(params), browser.headers)

    async def ad_click(self, browser: Browser, affiliate: str, ad: str, sub: str) -> str:
        """``GET /a/{affiliate}/{ad}``; the landing URL it redirects to."""
        resp = await self._send(
            "GET", f"/a/{affiliate}/{ad}?" + urlencode({"sub": sub}), browser.headers, waits_for_config=True
        )
        return resp.headers["Location"]

    async def impression(self, browser: Browser, affiliate: str, ad: str) -> None:
        """``GET /a/{affiliate}/{ad}/i.gif``: the ad shown on the affiliate's site (no cookie sent or set)."""
        await self._send("GET", f"/a/{affiliate}/{ad}/i.gif", browser.headers)

    async def form(
        self, browser: Browser, key: str, fields: dict[str, str], page: str, origin: str, idempotency_key: str
    ) -> None:
        """``POST /f/{key}`` as a plain HTML form with an Idempotency-Key (a resend is stored once)."""
        headers = {
            **browser.headers,
            "Origin": origin,
            "Referer": page,
            "Accept": "application/json",
            "Idempotency-Key": idempotency_key,
        }
        await self._send("POST", f"/f/{key}", headers, data=fields, waits_for_config=True)

    async def open(self, browser: Browser, token: str) -> None:
        """``GET /o/{token}.gif``: a mail client (or its image proxy) showing the e-mail."""
        await self._send("GET", f"/o/{token}.gif", browser.headers)

    async def click(self, browser: Browser, token: str, method: str = "GET") -> None:
        """``GET /c/{token}`` (link scanners also probe with HEAD)."""
        await self._send(method, f"/c/{token}", browser.headers)

    async def segment_batch(self, write_key: str, batch: list[dict[str, Any]], sent_at: str) -> None:
        """``POST /v1/batch`` as a Segment server SDK sends it (the write key as the Basic-auth user)."""
        auth = base64.b64encode(f"{write_key}:".encode()).decode()
        headers = {"Authorization": f"Basic {auth}", "User-Agent": "analytics-node-next/1.74.0"}
        await self._send(
            "POST", "/v1/batch", headers, json={"batch": batch, "sentAt": sent_at}, waits_for_config=True
        )
