"""What a pixel hit, an email open or a tracked-link click becomes, and the GIF they answer with: one module for
both HTTP paths.

The aiohttp routes (:mod:`pixel`, :mod:`links`) and the fast path (:mod:`fastpath`) build their events with these
functions and answer with this GIF, so the two paths cannot drift apart (tests/collector/test_fastpath.py holds
them to identical events). The GIF's headers are built once, at import, in the form each path writes them: a
read-only multidict for aiohttp, raw bytes for the fast path; a hit pays for neither.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlsplit

from multidict import CIMultiDict, CIMultiDictProxy

from leadline_collector.context import request_context
from leadline_collector.visitor import HitRequest
from leadline_shared.events import RawEvent, utc_now_iso
from leadline_shared.ids import event_id_from, new_id

GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
GIF_HEADERS = CIMultiDictProxy(
    CIMultiDict({"Content-Type": "image/gif", "Cache-Control": "no-store, max-age=0"})
)
"""The GIF's headers for aiohttp: naming the content type per response makes aiohttp parse it again on every hit."""
GIF_HEAD = b"".join(f"{name}: {value}\r\n".encode() for name, value in GIF_HEADERS.items()) + (
    b"Content-Length: %d\r\n" % len(GIF)
)
"""The same headers as the fast path writes them, with the length (aiohttp adds that one itself)."""

LINK_FIELDS = ("campaign_id", "send_id", "recipient_token", "sent_at")  # sent_at: when the email went out
_LINK_KEYS = (*LINK_FIELDS, "target")
_RESERVED = {"url", "ref", "title", "e", "eid", "sent_at"}
"""Pixel query parameters that are read into the event itself, not into its properties."""


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
