"""What every service's HTTP side shares: health, readiness, Prometheus metrics and RFC 9457 problems."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

ReadinessCheck = Callable[[], Awaitable[bool]]
REGISTRY = web.AppKey("metrics_registry", CollectorRegistry)
CHECKS = web.AppKey("readiness_checks", dict[str, ReadinessCheck])
DRAINING = web.AppKey("draining", asyncio.Event)

PROBLEM_TYPE = "application/problem+json"


def problem(status: int, title: str, detail: str | None = None, **extra: Any) -> web.Response:
    """An RFC 9457 problem document, the one error shape of every Leadline API."""
    doc: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        doc["detail"] = detail
    doc.update(extra)
    return web.Response(status=status, body=orjson.dumps(doc), content_type=PROBLEM_TYPE)


async def _healthz(request: web.Request) -> web.Response:
    """Alive: the process answers. Never depends on Kafka or PostgreSQL, so a broker outage kills no pod."""
    return web.json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    """Ready: every dependency answers; 503 naming the failing ones otherwise (and while draining)."""
    checks = request.app[CHECKS]
    names = list(checks)
    results = await asyncio.gather(*(checks[n]() for n in names), return_exceptions=True)
    status = {n: (r is True) for n, r in zip(names, results, strict=True)}
    draining = request.app[DRAINING].is_set()
    ok = all(status.values()) and not draining
    body = {"status": "ok" if ok else "unavailable", "checks": status, "draining": draining}
    return web.json_response(body, status=200 if ok else 503)


async def _metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition of this service's registry."""
    body = generate_latest(request.app[REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})


def add_ops_routes(app: web.Application, registry: CollectorRegistry) -> None:
    """Install /healthz, /readyz and /metrics; readiness checks are added later with :func:`add_check`."""
    app[REGISTRY] = registry
    app[CHECKS] = {}
    app[DRAINING] = asyncio.Event()
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)


def add_check(app: web.Application, name: str, check: ReadinessCheck) -> None:
    """Register a readiness check (e.g. "kafka", "postgres")."""
    app[CHECKS][name] = check
