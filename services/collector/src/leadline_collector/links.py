"""Email opens (``GET /o/{token}.gif``) and tracked email links (``GET /c/{token}``), both signed (§6).

A valid link token answers 302 to its target and records a link_click; a forged, expired or unknown-key token
answers 404 and never redirects (an open redirect would let anyone borrow our domain for phishing).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from leadline_collector import pages
from leadline_collector.context import request_context
from leadline_collector.metrics import CollectorMetrics
from leadline_collector.pixel import GIF, GIF_HEADERS
from leadline_collector.sink import Sink, store_or_count
from leadline_collector.visitor import HitRequest, set_cookie, visitor_id
from leadline_shared.events import RawEvent, utc_now_iso
from leadline_shared.ids import new_id
from leadline_shared.signing import InvalidToken, KeyRing

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
LINK_FIELDS = ("campaign_id", "send_id", "recipient_token", "sent_at")  # sent_at: when the email went out
_LINK_KEYS = (*LINK_FIELDS, "target")


def link_event(request: HitRequest, kind: str, payload: dict[str, Any], anon_id: str | None) -> RawEvent:
    """An email_open or link_click carrying the send, the campaign and the recipient's token."""
    link: dict[str, str] = {}
    for key in _LINK_KEYS:
        value = payload.get(key)
        if value is not None:
            link[key] = value if type(value) is str else str(value)
    context = request_context(
        request, link.get("target") if kind == "link_click" else None, request.headers.get("referer")
    )
    if request.method == "HEAD":
        context["method"] = "HEAD"  # link scanners probe with HEAD; the enricher marks them
    recipient = link.get("recipient_token")
    return RawEvent(
        event_id=new_id(),
        type=kind,
        source="link",
        received_at=utc_now_iso(),
        anon_id=anon_id,
        ids={"recipient_token": recipient} if recipient is not None else {},
        context=context,
        properties={},
        link=link,
    )


def safe_target(payload: dict[str, Any]) -> str | None:
    """The link's http(s) target, or None."""
    target = payload.get("target")
    if not isinstance(target, str):
        return None
    parts = urlsplit(target)
    return target if parts.scheme in ("http", "https") and parts.netloc else None


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
