"""``GET /p.gif``: the tracking pixel. Always answers the GIF fast; the event goes to the sink."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from leadline_collector.hits import GIF, GIF_HEADERS, pixel_event
from leadline_collector.metrics import CollectorMetrics
from leadline_collector.sink import Sink, store_or_count
from leadline_collector.visitor import set_cookie, visitor_id

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def make_handler(sink: Sink, metrics: CollectorMetrics, cookie_domain: str) -> Handler:
    """The pixel route bound to its sink."""

    async def pixel(request: web.Request) -> web.StreamResponse:
        anon_id, _is_new = visitor_id(request)
        event = pixel_event(request, anon_id)
        await store_or_count(sink, metrics, event)
        response = web.Response(body=GIF, headers=GIF_HEADERS)
        if anon_id:
            set_cookie(response, request, anon_id, cookie_domain)
        return response

    return pixel
