"""``GET /p.gif``: the tracking pixel. Always answers the GIF fast; the event goes to the sink."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from leadline_collector.context import request_context
from leadline_collector.metrics import CollectorMetrics
from leadline_collector.sink import Sink, store_or_count
from leadline_collector.visitor import HitRequest, set_cookie, visitor_id
from leadline_shared.events import RawEvent, utc_now_iso
from leadline_shared.ids import event_id_from

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_RESERVED = {"url", "ref", "title", "e", "eid", "sent_at"}
GIF_HEADERS = CIMultiDictProxy(
    CIMultiDict({"Content-Type": "image/gif", "Cache-Control": "no-store, max-age=0"})
)
"""Built once: naming the content type per response makes aiohttp parse it again on every hit."""


def pixel_event(request: HitRequest, anon_id: str | None) -> RawEvent:
    """A page view, or a custom event when ``e`` names one; other query parameters become properties."""
    q = request.query
    name = q.get("e")
    properties = {k: v[:512] for k, v in q.items() if k not in _RESERVED}
    if name:
        properties["event"] = name[:128]
    return RawEvent(
        event_id=event_id_from(q.get("eid")),
        type="track" if name else "page_view",
        source="pixel",
        received_at=utc_now_iso(),
        sent_at=q.get("sent_at"),
        anon_id=anon_id,
        context=request_context(request, q.get("url"), q.get("ref"), q.get("title")),
        properties=properties,
    )


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
