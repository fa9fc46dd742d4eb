"""Outbound webhook dispatch (issue 16: >= 1,000 deliveries/s to a local receiver, p99 signing-to-send <= 50 ms).

A schema of its own gets one subscription (allowed 127.0.0.0/8, the documented escape for a local receiver) and
:data:`DELIVERIES` queued deliveries of a typical event body; crm-core's dispatcher (webhooks/dispatch.py, its
defaults: 64 in flight, keep-alive) then sends them to an aiohttp receiver on a loopback port, in this process.
Throughput counts from the dispatcher's start until PostgreSQL holds every delivery as delivered (claims, signing,
POSTs and the log writes included). Signing to send: from the start of the request (right after signing, nothing
awaited between) until its headers are on the wire, timed with aiohttp's request tracing. Signing to answer: each
attempt's time until the receiver's answer, as the delivery log keeps it.

Baseline, in the same run: the same number of POSTs of the same body sent straight with one aiohttp session and
the same concurrency to the same receiver (no PostgreSQL, no signing), and its per-request latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web
from cryptography.fernet import Fernet

from benchmarks import crm_bench
from leadline_crm.app import MIGRATIONS
from leadline_crm.webhooks import signing
from leadline_crm.webhooks.dispatch import Dispatcher
from leadline_crm.webhooks.sealing import Sealer
from leadline_crm.webhooks.subscriptions import MAX_RATE
from leadline_shared import pg

DELIVERIES = int(os.environ.get("LEADLINE_BENCH_WEBHOOKS", "10000"))
CONCURRENCY = 64
RATE_TARGET, P99_TARGET_MS = 1000.0, 50.0
BODY = (
    '{"type":"person.stage_changed","timestamp":"2026-11-30T12:00:00+00:00","data":{"person_id":"%s",'
    '"from":"lead","to":"prospect","score":42.5}}'
)


async def receiver() -> tuple[web.AppRunner, str, list[int]]:
    """An aiohttp receiver on a free loopback port that answers 200 and counts what it got."""
    got = [0]

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        got[0] += 1
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/hook", got


async def baseline(url: str, n: int) -> tuple[float, list[float]]:
    """``n`` POSTs straight with aiohttp, ``CONCURRENCY`` at a time: (requests/s, latencies in ms)."""
    latencies: list[float] = []
    queue = iter(range(n))
    body = (BODY % uuid.uuid4()).encode()

    async def worker(session: aiohttp.ClientSession) -> None:
        for _ in queue:
            start = time.perf_counter()
            async with session.post(url, data=body, headers={"content-type": "application/json"}) as resp:
                await resp.read()
            latencies.append((time.perf_counter() - start) * 1000)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as session:
        start = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - start
    return n / elapsed, latencies


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def seed(conn: asyncpg.Connection, url: str, n: int, sealer: Sealer) -> None:
    """One subscription (its secret sealed, its rate limit at the most, so the dispatcher is measured, not the
    limit) and ``n`` queued deliveries."""
    sid = await conn.fetchval(
        "INSERT INTO webhook_subscriptions (url, event_types, allowed_network, secret, created_by, rate_limit)"
        " VALUES ($1, ARRAY['person.stage_changed'], '127.0.0.0/8', $2, 'bench', $3) RETURNING id",
        url,
        sealer.seal(signing.new_secret()),
        MAX_RATE,
    )
    await conn.execute(
        "INSERT INTO webhook_deliveries (subscription_id, msg_id, event_type, payload)"
        " SELECT $1, 'msg_bench_' || i, 'person.stage_changed', replace($3, '%s', gen_random_uuid()::text)::jsonb"
        "   FROM generate_series(1, $2::int) AS i",
        sid,
        n,
        BODY,
    )


def send_timer(latencies: list[float]) -> aiohttp.TraceConfig:
    """Times each request from its start (right after signing: no await between) until its headers are on the
    wire, in ms, appended to ``latencies``."""

    async def start(_: Any, ctx: Any, __: Any) -> None:
        ctx.start = time.perf_counter()

    async def sent(_: Any, ctx: Any, __: Any) -> None:
        latencies.append((time.perf_counter() - ctx.start) * 1000)

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(start)
    trace.on_request_headers_sent.append(sent)
    return trace


async def dispatch(pool: asyncpg.Pool, n: int, sends: list[float], sealer: Sealer) -> float:
    """Run the dispatcher until all ``n`` are delivered; deliveries/s (signing-to-send times into ``sends``)."""
    trace = send_timer(sends)
    dispatcher = Dispatcher(
        pool, concurrency=CONCURRENCY, poll_seconds=0.05, trace_configs=(trace,), sealer=sealer
    )
    start = time.perf_counter()
    task = asyncio.create_task(dispatcher.run())
    try:
        while await pool.fetchval("SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'") < n:
            if task.done():
                task.result()
            assert time.perf_counter() - start < 300, "dispatch took over 5 minutes"
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - start
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return n / elapsed


async def run(kafka_bootstrap: str, pg_dsn: str) -> dict[str, Any]:
    """Deliveries per second and p99 signing-to-answer, beside straight aiohttp POSTs to the same receiver."""
    schema = f"bench_wh_{uuid.uuid4().hex[:8]}"
    runner, url, got = await receiver()
    try:
        await pg.migrate(pg_dsn, schema, MIGRATIONS)
        pool = await pg.create_pool(pg_dsn, schema, min_size=2, max_size=4)
        try:
            sealer = Sealer.of(Fernet.generate_key().decode())
            async with pool.acquire() as conn:
                await seed(conn, url, DELIVERIES, sealer)
            sends: list[float] = []
            rate = await dispatch(pool, DELIVERIES, sends, sealer)
            latency = await pool.fetchval(
                "SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY last_response_ms) FROM webhook_deliveries"
            )
            errors = await pool.fetchval(
                "SELECT count(*) FROM webhook_deliveries WHERE status <> 'delivered'"
            )
        finally:
            await pool.close()
        received = got[0]
        base_rate, base_latencies = await baseline(url, DELIVERIES)
    finally:
        await runner.cleanup()
        await crm_bench._drop_schemas(pg_dsn, schema)
    return {
        "title": "crm-core: outbound webhooks, dispatcher to a local receiver",
        "rows": [
            {
                "metric": "deliveries",
                "value": round(rate, 1),
                "unit": "deliveries/s",
                "target": f">= {RATE_TARGET:g}",
                "baseline": f"{base_rate:.0f} POSTs/s (straight aiohttp, same receiver)",
            },
            {
                "metric": "signing to send p99",
                "value": round(p99(sends), 2),
                "unit": "ms",
                "target": f"<= {P99_TARGET_MS:g}",
                "baseline": None,
            },
            {
                "metric": "signing to answer p99",
                "value": round(float(latency), 2),
                "unit": "ms",
                "target": None,
                "baseline": f"{p99(base_latencies):.2f} ms (straight aiohttp p99, request to answer)",
            },
        ],
        "notes": f"{DELIVERIES} deliveries queued in one schema, one subscription (its rate limit set to the most, "
        f"{MAX_RATE:,.0f}/s; its secret sealed and opened to sign), at most {CONCURRENCY} in flight of which one "
        f"subscription may hold 3/4, keep-alive; the receiver (aiohttp, same process) counted {received}; "
        f"{errors} not delivered.",
    }
