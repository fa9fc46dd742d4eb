"""The Segment HTTP tracking API (``/v1/track`` … ``/v1/batch``), so Segment and RudderStack SDKs send here unchanged.

The write key comes as the HTTP Basic user (how the SDKs send it) or as ``writeKey`` in the body, and must be
one crm-core registered. Calls are answered once durable, since SDKs retry whatever is not acknowledged.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from leadline_collector.beacon import identifiers
from leadline_collector.bodies import BodyError, read_json
from leadline_collector.context import campaign_from_url, client_ip
from leadline_collector.metrics import CollectorMetrics
from leadline_collector.sink import Sink, SinkUnavailable
from leadline_collector.siteconfig_store import SiteConfigStore
from leadline_shared.events import RawEvent, utc_now_iso
from leadline_shared.http import problem
from leadline_shared.ids import event_id_from

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
TYPES = {
    "track": "track",
    "identify": "identify",
    "page": "page_view",
    "screen": "screen",
    "group": "group",
    "alias": "alias",
}
MAX_BATCH = 500


class BadCall(Exception):
    """A call the API refuses, with its status and reason."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def write_key(request: web.Request, body: dict[str, Any]) -> str | None:
    """The write key from Basic auth (user part) or the body."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        try:
            user = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            return None
        return user or None
    key = body.get("writeKey") or body.get("write_key")
    return key if isinstance(key, str) and key else None


def _str(value: Any, limit: int = 2048) -> str | None:
    if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
        return str(value)[:limit]
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def message_event(
    request: web.Request, msg: dict[str, Any], kind: str, site: str, sent_at: str | None, default_region: str
) -> RawEvent:
    """One Segment message as a raw event; raises :class:`BadCall` when it lacks an identity or a name."""
    ctx = _dict(msg.get("context"))
    page = _dict(ctx.get("page"))
    properties = dict(_dict(msg.get("properties")))
    traits = _dict(msg.get("traits")) | _dict(ctx.get("traits"))
    user_id, anon_id = _str(msg.get("userId"), 200), _str(msg.get("anonymousId"), 200)
    if not user_id and not anon_id:
        raise BadCall(400, "every message needs a userId or an anonymousId")
    if kind == "track":
        name = _str(msg.get("event"), 200)
        if not name:
            raise BadCall(400, "a track call needs an event name")
        properties["event"] = name
    elif kind in ("page_view", "screen") and _str(msg.get("name")):
        properties.setdefault("name", _str(msg.get("name"), 200))
    elif kind == "group":
        properties["group_id"] = _str(msg.get("groupId"), 200)
        properties["traits"] = traits
    elif kind == "alias":
        properties["previous_id"] = _str(msg.get("previousId"), 200)
    if kind == "identify":
        properties["traits"] = {k: v for k, v in traits.items() if isinstance(v, str | int | float | bool)}
    url = _str(page.get("url")) or _str(properties.get("url"))
    context: dict[str, Any] = {
        "ip": _str(ctx.get("ip"), 64) or client_ip(request),
        "user_agent": _str(ctx.get("userAgent"), 512) or request.headers.get("User-Agent", "")[:512],
        "site": site,
    }
    for name, value in (
        ("url", url),
        ("referrer", _str(page.get("referrer")) or _str(properties.get("referrer"))),
        ("title", _str(page.get("title"), 512) or _str(properties.get("title"), 512)),
        ("locale", _str(ctx.get("locale"), 32)),
    ):
        if value:
            context[name] = value
    campaign = {
        k: str(v)[:200]
        for k, v in _dict(ctx.get("campaign")).items()
        if k in ("source", "medium", "name", "term", "content") and v
    }
    url_campaign, click_ids = campaign_from_url(url)
    if campaign or url_campaign:
        context["campaign"] = url_campaign | campaign
    if click_ids:
        context["click_ids"] = click_ids
    ids = identifiers(traits, default_region) if kind in ("identify", "group") or traits else {}
    if user_id:
        ids["user_id"] = user_id
    return RawEvent(
        event_id=event_id_from(_str(msg.get("messageId"), 64)),
        type=kind,
        source="segment",
        received_at=utc_now_iso(),
        sent_at=_str(msg.get("sentAt"), 40) or sent_at,
        occurred_at=_str(msg.get("timestamp"), 40) or _str(msg.get("originalTimestamp"), 40),
        anon_id=anon_id,
        ids=ids,
        context=context,
        properties=properties,
    )


def make_handler(
    sink: Sink, store: SiteConfigStore, metrics: CollectorMetrics, *, default_region: str, body_limit: int
) -> Handler:
    """One handler for every /v1 call; the call type comes from the path (or each batch item)."""

    async def segment(request: web.Request) -> web.StreamResponse:
        call = request.match_info["call"]
        try:
            body = await read_json(request, body_limit, allow_text_plain=True)
            if not isinstance(body, dict):
                raise BadCall(400, "the body must be a JSON object")
            key = write_key(request, body)
            if key is None or store.source(key) is None:
                metrics.rejected.labels(endpoint="segment", reason="write_key").inc()
                return problem(
                    401, "Unauthorized", "unknown or missing write key (HTTP Basic user or writeKey)"
                )
            site = store.source(key).name or key  # type: ignore[union-attr]
            if call == "batch":
                batch = body.get("batch")
                if not isinstance(batch, list) or len(batch) > MAX_BATCH:
                    raise BadCall(400, f"batch must be a list of at most {MAX_BATCH} messages")
                messages = [(m, TYPES.get(str(m.get("type")))) for m in batch if isinstance(m, dict)]
            else:
                messages = [(body, TYPES[call])]
            events = []
            for msg, kind in messages:
                if kind is None:
                    raise BadCall(400, "unknown message type in batch")
                if call == "batch" and "context" not in msg:
                    msg["context"] = body.get("context")
                events.append(
                    message_event(request, msg, kind, site, _str(body.get("sentAt"), 40), default_region)
                )
        except BodyError as exc:
            metrics.rejected.labels(endpoint="segment", reason=str(exc.status)).inc()
            return problem(exc.status, "Bad request", exc.detail)
        except BadCall as exc:
            metrics.rejected.labels(endpoint="segment", reason=str(exc.status)).inc()
            return problem(exc.status, "Bad request", exc.detail)
        try:
            await asyncio.gather(*(sink.store(event, durable=True) for event in events))
        except SinkUnavailable:
            resp = problem(503, "Unavailable", "events could not be stored now; retry")
            resp.headers["Retry-After"] = "30"
            return resp
        for event in events:
            metrics.events.inc(event.type, "segment")
        return web.json_response({"success": True})

    return segment
