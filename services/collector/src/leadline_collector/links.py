"""Email opens (``GET /o/{token}.gif``) and tracked email links (``GET /c/{token}``), both signed (§6).

A valid link token answers 302 to its target and records a link_click; a forged, expired or unknown-key token
answers 404 and never redirects (an open redirect would let anyone borrow our domain for phishing).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from leadline_collector import pages
from leadline_collector.hits import GIF, GIF_HEADERS, link_event, safe_target
from leadline_collector.metrics import CollectorMetrics
from leadline_collector.sink import Sink, store_or_count
from leadline_collector.visitor import set_cookie, visitor_id
from leadline_shared.signing import InvalidToken, KeyRing

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def make_handlers(
    sink: Sink, keys: KeyRing, metrics: CollectorMetrics, cookie_domain: str
) -> tuple[Handler, Handler]:
    """The open-pixel and click routes."""

    async def email_open(request: web.Request) -> web.StreamResponse:
        response = web.Response(body=GIF, headers=GIF_HEADERS)
        try:
            payload = keys.verify(request.match_info["token"])
        except InvalidToken:
            metrics.rejected.labels(endpoint="open", reason="invalid_token").inc()
            return response  # an image must still render; nothing is recorded
        anon_id, _ = visitor_id(request)
        await store_or_count(sink, metrics, link_event(request, "email_open", payload, anon_id))
        return response

    async def click(request: web.Request) -> web.StreamResponse:
        try:
            payload = keys.verify(request.match_info["token"])
            target = safe_target(payload)
            if target is None:
                raise InvalidToken("no target")
        except InvalidToken:
            metrics.rejected.labels(endpoint="click", reason="invalid_token").inc()
            return pages.html_page(
                404, "Link not found", "This link is not valid or has expired. Nothing was opened."
            )
        anon_id, _ = visitor_id(request)
        await store_or_count(sink, metrics, link_event(request, "link_click", payload, anon_id))
        response = web.Response(status=302, headers={"Location": target, "Cache-Control": "no-store"})
        if anon_id:
            set_cookie(response, request, anon_id, cookie_domain)
        return response

    return email_open, click
