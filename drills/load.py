"""The fixed load of a drill: pixels at a steady rate and form posts, each with a unique id, against the collector.

Like the collector's outage tests (tests/collector/test_outage_recovery.py) it sends bursts every 100 ms and
remembers only what was answered, since only that is promised; unlike them it also remembers *when* each answer
came and when requests failed, because a drill measures time to recover. Pixels come from a few hundred
visitors (an ``ll_vid`` cookie each), so they spread over the raw topic's partitions as real traffic does.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp

from drills.report import Observed

PIXEL_STEP_S = 0.1
VISITORS = 200
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
)


@dataclass(frozen=True)
class Rates:
    """Pixels and form posts per second."""

    pixels: int = 1000
    forms: float = 5.0


def visitor(n: int) -> str:
    """A fixed, well-formed visitor id (the collector refuses a malformed cookie and mints its own)."""
    return f"0190b3f0-7c1e-7cc2-9a57-{n % VISITORS:012x}"


def form_email(prefix: str, n: int) -> str:
    """The unique address of the ``n``-th form post of a drill."""
    return f"{prefix}-f{n}@drill.example"


class Load:
    """Steady traffic against one collector for a given time; fills an :class:`Observed`."""

    def __init__(self, collector_url: str, prefix: str, rates: Rates, obs: Observed) -> None:
        self.url = collector_url.rstrip("/")
        self.prefix = prefix
        self.rates = rates
        self.obs = obs

    async def run(self, stop: asyncio.Event) -> None:
        """Send pixels and forms until ``stop`` is set; failures are counted, never raised."""
        timeout = aiohttp.ClientTimeout(total=5)
        connector = aiohttp.TCPConnector(limit=128, force_close=False)
        async with aiohttp.ClientSession(
            timeout=timeout, connector=connector, cookie_jar=aiohttp.DummyCookieJar()
        ) as http:
            await asyncio.gather(self._pixels(http, stop), self._forms(http, stop))

    async def _pixels(self, http: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        burst = max(1, int(self.rates.pixels * PIXEL_STEP_S))
        seq = 0
        while not stop.is_set():
            tick = time.monotonic()
            ids = [f"{self.prefix}-p{seq + i}" for i in range(burst)]
            await asyncio.gather(*(self._pixel(http, seq + i, ident) for i, ident in enumerate(ids)))
            seq += burst
            await asyncio.sleep(max(0.0, PIXEL_STEP_S - (time.monotonic() - tick)))

    async def _pixel(self, http: aiohttp.ClientSession, n: int, ident: str) -> None:
        params = {"url": "https://www.shop.example/", "e": "load", "n": ident}
        headers = {"Cookie": f"ll_vid={visitor(n)}", "User-Agent": USER_AGENT}
        try:
            async with http.get(f"{self.url}/p.gif", params=params, headers=headers) as resp:
                await resp.read()
                ok = 200 <= resp.status < 300
        except (aiohttp.ClientError, TimeoutError):
            ok = False
        if ok:
            self.obs.answered_pixels[ident] = time.monotonic()
        else:
            self.obs.refused_pixels += 1
            self.obs.refusal_times.append(time.monotonic())

    async def _forms(self, http: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        # Each post runs on its own so that one waiting on a dead collector does not slow the rate.
        posts: list[asyncio.Task[None]] = []
        while not stop.is_set():
            tick = time.monotonic()
            posts.append(asyncio.create_task(self._form(http, form_email(self.prefix, len(posts)))))
            await asyncio.sleep(max(0.0, 1 / self.rates.forms - (time.monotonic() - tick)))
        await asyncio.gather(*posts)

    async def _form(self, http: aiohttp.ClientSession, email: str) -> None:
        headers = {"Origin": self.url, "Accept": "application/json", "User-Agent": USER_AGENT}
        try:
            async with http.post(f"{self.url}/f/demo", json={"email": email}, headers=headers) as resp:
                await resp.read()
                ok = resp.status == 200  # acknowledged: durable in Kafka or in the fsync'd spool
        except (aiohttp.ClientError, TimeoutError):
            ok = False
        if ok:
            self.obs.answered_forms[email] = time.monotonic()
        else:
            self.obs.refused_forms += 1
            self.obs.refusal_times.append(time.monotonic())
