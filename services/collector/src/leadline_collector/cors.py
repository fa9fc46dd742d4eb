"""CORS for the routes a customer's own pages call from the browser (beacons, fetch form posts, Segment).

Those pages live on the customer's domain; the collector answers with their Origin and allows credentials so the
first-party ``ll_vid`` cookie travels with the calls. Applied per route rather than as a middleware, so pixels
and links (most of the traffic) pay nothing for it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _allow(request: web.Request, response: web.StreamResponse) -> None:
    origin = request.headers.get("Origin")
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Vary"] = "Origin"


def allow(handler: Handler) -> Handler:
    """The handler, with CORS headers on its answers."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        response = await handler(request)
        _allow(request, response)
        return response

    return wrapped


PREFLIGHT = {
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Authorization, Idempotency-Key",
    "Access-Control-Max-Age": "600",
}
"""What a preflight is told, whichever path answers it (the fast path answers those for its own POST routes)."""


async def preflight(request: web.Request) -> web.StreamResponse:
    """``OPTIONS``: the browser asks whether a cross-site POST with JSON may be sent."""
    response = web.Response(status=204, headers=PREFLIGHT)
    _allow(request, response)
    return response
