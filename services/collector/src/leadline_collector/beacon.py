"""``POST /e``: batched events from the capture snippet (fetch with JSON, or sendBeacon with text/plain).

Each item carries the snippet's own event id, so a batch retried after a lost answer is deduplicated
downstream. Bad items are counted and skipped; the rest of the batch is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from leadline_collector import normalize
from leadline_collector.bodies import BodyError, read_json
from leadline_collector.clientids import event_id
from leadline_collector.context import RequestView, page_context
from leadline_collector.metrics import CollectorMetrics
from leadline_collector.sink import Sink, record_all_or_count
from leadline_collector.visitor import HitRequest, privacy_opt_out, set_cookie, visitor_id
from leadline_shared.events import EncodedEvent, encode_raw, storable_fragment, utc_now_iso
from leadline_shared.http import problem
from leadline_shared.ids import new_id

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_ITEMS = 100
TYPES = {
    "page_view": "page_view",
    "page": "page_view",
    "track": "track",
    "identify": "identify",
    "form_submit": "form_submit",
}


def _text(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _field_value(value: Any) -> Any:
    """A form field as the snippet sent it (text, number, checkbox flag or list of choices), bounded."""
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, list):
        return [str(v)[:500] for v in value[:50]]
    return str(value)[:2000]


def identifiers(traits: dict[str, Any], default_region: str) -> dict[str, str]:
    """Usable identifiers from identify traits; values that do not parse are left out."""
    ids: dict[str, str] = {}
    for name, fn in (("email", normalize.email), ("phone", lambda v: normalize.phone(v, default_region))):
        value = traits.get(name)
        if isinstance(value, str) and value.strip():
            with contextlib.suppress(normalize.InvalidValue):
                ids[name] = fn(value)
    if isinstance(traits.get("user_id"), str | int) and str(traits["user_id"]).strip():
        ids["user_id"] = str(traits["user_id"])[:200]
    return ids


def item_event(
    request: HitRequest | RequestView,
    item: dict[str, Any],
    anon_id: str | None,
    sent_at: str | None,
    default_region: str,
    opted_out: bool,
    received_at: str | None = None,
    contexts: dict[Any, Any] | None = None,
) -> EncodedEvent | None:
    """One snippet item as a raw event, or None when it is unusable (``request``: the request, or its
    :class:`RequestView`, read once for every item of a beacon; ``received_at``: the beacon's arrival, one
    time for all its items, else now; ``contexts``: the contexts the beacon's earlier items made, by what
    made them, so items from one page share one encoding)."""
    view = request if isinstance(request, RequestView) else RequestView.of(request)
    given = item.get("type", "")
    kind = TYPES.get(given if type(given) is str else str(given))
    if kind is None:
        return None
    given = item.get("props")
    properties: dict[str, Any] = dict(given) if isinstance(given, dict) else {}
    if kind == "track":
        name = _text(item.get("name"), 128)
        if name is None:
            return None
        properties["event"] = name
    context = item_context(view, item, contexts)
    traits = item.get("traits")
    ids = identifiers(traits, default_region) if traits and isinstance(traits, dict) and not opted_out else {}
    if kind == "identify" and not opted_out:
        traits = _obj(traits)
        properties["traits"] = {k: v for k, v in traits.items() if isinstance(v, str | int | float | bool)}
    form = None
    if kind == "form_submit" and isinstance(item.get("form"), dict):
        fields = _obj(item["form"].get("fields"))
        form = {
            "key": str(item["form"].get("id") or "auto")[:200],
            "fields": {} if opted_out else {str(k)[:100]: _field_value(v) for k, v in fields.items()},
        }
        if not opted_out:
            ids |= identifiers(fields, default_region)
    client_id = item.get("id")
    return encode_raw(
        new_id() if client_id is None else event_id(_text(client_id, 64)),
        kind,
        "beacon",
        received_at or utc_now_iso(),
        sent_at,
        _text(item.get("ts"), 40),
        anon_id,
        ids,
        context,
        properties,
        form,
    )


def item_context(
    view: RequestView, item: dict[str, Any], contexts: dict[Any, Any] | None
) -> dict[str, Any] | orjson.Fragment:
    """An item's ``context``: the request's view, the page it reports and the consent it states.

    With ``contexts`` (a beacon's), an item reporting the same page and consent as an earlier one gets that one's
    context again, encoded once (the snippet sends a page's events together).
    """
    url, ref, title = (
        _text(item.get("url"), 2048),
        _text(item.get("ref"), 2048),
        _text(item.get("title"), 512),
    )
    consent = item.get("consent")
    if contexts is None:
        return _page_and_consent(view, url, ref, title, consent)
    try:
        seen = (url, ref, title, orjson.dumps(consent) if consent is not None else None)
    except TypeError:  # not what a JSON body parses to: no remembering
        return _page_and_consent(view, url, ref, title, consent)
    encoded = contexts.get(seen)
    if encoded is None:
        encoded = contexts[seen] = storable_fragment(_page_and_consent(view, url, ref, title, consent))
    return encoded


def _page_and_consent(
    view: RequestView, url: str | None, ref: str | None, title: str | None, consent: Any
) -> dict[str, Any]:
    context = page_context(view, url, ref, title)
    if isinstance(consent, dict):
        context["consent"] = context.get("consent", {}) | {
            k: bool(v) for k, v in consent.items() if k in ("analytics", "marketing", "dnt", "gpc")
        }
    return context


def take(
    request: HitRequest, body: Any, sink: Sink, metrics: CollectorMetrics, default_region: str
) -> tuple[dict[str, int], str | None] | web.Response:
    """Record a parsed beacon's usable items: the answer's counts and the visitor id to set as the cookie (None:
    none), or the refusal of a body that is not a batch. Both HTTP paths call this."""
    sent_at = None
    if isinstance(body, dict):
        sent_at = _text(body.get("sent_at"), 40)
        body = body.get("batch")
    if not isinstance(body, list) or len(body) > MAX_ITEMS:
        metrics.rejected.labels(endpoint="beacon", reason="shape").inc()
        return problem(
            400, "Bad beacon", f"send a JSON array (or {{'batch': [...]}}) of at most {MAX_ITEMS} events"
        )
    items = [i for i in body if isinstance(i, dict)]
    consents = [c for i in items if isinstance(c := i.get("consent"), dict)]
    opted_out = privacy_opt_out(request) or any(c.get("dnt") or c.get("gpc") for c in consents)
    no_cookie = opted_out or any(c.get("analytics") is False for c in consents)
    anon_id, _ = visitor_id(request)
    if no_cookie and request.cookies.get("ll_vid") is None:
        anon_id = None
    contexts: dict[Any, Any] = {}
    view, received_at = RequestView.of(request), utc_now_iso()
    events = [
        event
        for item in items
        if (
            event := item_event(
                view, item, anon_id, sent_at, default_region, opted_out, received_at, contexts
            )
        )
        is not None
    ]
    accepted = record_all_or_count(sink, metrics, events)
    rejected = len(body) - accepted
    if rejected:
        metrics.rejected.labels(endpoint="beacon", reason="item").inc(rejected)
    return {"accepted": accepted, "rejected": rejected}, None if no_cookie else anon_id


def make_handler(
    sink: Sink, metrics: CollectorMetrics, *, cookie_domain: str, default_region: str, body_limit: int
) -> Handler:
    """The beacon route."""

    async def beacon(request: web.Request) -> web.StreamResponse:
        try:
            body = await read_json(request, body_limit, allow_text_plain=True)
        except BodyError as exc:
            metrics.rejected.labels(endpoint="beacon", reason=str(exc.status)).inc()
            return problem(exc.status, "Bad beacon", exc.detail)
        taken = take(request, body, sink, metrics, default_region)
        if isinstance(taken, web.Response):
            return taken
        counts, cookie = taken
        room = sink.throttle()
        if room is not None:  # the publisher is behind: answer once it caught up (shielded: others wait too)
            await asyncio.shield(room)
        response = web.json_response(counts)
        if cookie:
            set_cookie(response, request, cookie, cookie_domain)
        return response

    return beacon
