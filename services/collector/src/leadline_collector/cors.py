"""CORS for the routes a customer's own pages call from the browser (beacons, fetch form posts, Segment).

Those pages live on the customer's domain; the collector answers with their Origin and allows credentials so the
first-party ``ll_vid`` cookie travels with the calls.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CORS_PATHS = ("/e", "/f/", "/v1/")


def _applies(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path.startswith(prefix + p) or path == prefix + p for prefix in prefixes for p in CORS_PATHS)


def middleware(prefixes: tuple[str, ...]) -> Middleware:
    """Answer preflights and add CORS headers on the capture routes under any of ``prefixes``."""

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if not origin or not _applies(request.path, prefixes):
            return await handler(request)
        if request.method == "OPTIONS":
            response: web.StreamResponse = web.Response(status=204)
            response.headers.update(
                {
                    "Access-Control-Allow-Methods": "POST, OPTIONS",
                    "Access-Control-Allow-Headers": "Content-Type, Authorization, Idempotency-Key",
                    "Access-Control-Max-Age": "600",
                }
            )
        else:
            response = await handler(request)
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Vary"] = "Origin"
        return response

    return cors
