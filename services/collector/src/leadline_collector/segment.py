"""The Segment HTTP tracking API (``/v1/track`` … ``/v1/batch``), so Segment and RudderStack SDKs send here unchanged.

analytics.js (``@segment/analytics-next``) posts each call to the type's first letter instead (``/v1/t``,
``/v1/p``, ``/v1/i``, ``/v1/a``, ``/v1/g``, ``/v1/s``) as ``text/plain`` with ``writeKey`` in the body: those
paths are the same calls (:data:`SHORT`), judged and built exactly like their long forms.

The write key comes as the HTTP Basic user (how the SDKs send it) or as ``writeKey`` in the body, and must be
one crm-core registered. Calls are answered once durable, since SDKs retry whatever is not acknowledged.

A retry must not become a second event: the ``messageId`` (any string; analytics.js sends ``ajs-next-<hash>``)
becomes the event id through :func:`leadline_shared.ids.scoped_event_id`, scoped by write key. A batch is judged
message by message: the good ones are kept and the others reported in the answer (``accepted``, ``rejected``,
``errors`` by index), as Segment answers 200 to a batch it could partly use; only a batch of which nothing is
usable, or that is not a list at all, is refused outright.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import orjson
from aiohttp import web

from leadline_collector.beacon import identifiers
from leadline_collector.bodies import BodyError, read_json
from leadline_collector.clientids import scoped_id
from leadline_collector.context import RequestView, campaign_from_url
from leadline_collector.metrics import CollectorMetrics
from leadline_collector.sink import Sink, SinkUnavailable, tally
from leadline_collector.siteconfig_store import SiteConfigStore
from leadline_collector.visitor import HitRequest
from leadline_shared.events import EncodedEvent, encode_raw, storable_fragment, utc_now_iso
from leadline_shared.http import problem
from leadline_shared.ids import new_id

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
TYPES = {
    "track": "track",
    "identify": "identify",
    "page": "page_view",
    "screen": "screen",
    "group": "group",
    "alias": "alias",
}
SHORT = {"t": "track", "i": "identify", "p": "page", "s": "screen", "g": "group", "a": "alias", "b": "batch"}
"""analytics.js's one-letter paths and the long call each stands for (``/v1/b``: its batching mode)."""
CALLS = (*TYPES, "batch", *SHORT)
"""Every call name a ``/v1/{call}`` path may carry."""
SUCCESS = {"success": True}
MAX_BATCH = 500
_CAMPAIGN = frozenset({"source", "medium", "name", "term", "content"})


class BadCall(Exception):
    """A call (or one message of a batch) the API refuses: status, reason for people, metric label."""

    def __init__(self, status: int, detail: str, reason: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.reason = status, detail, reason or str(status)


@dataclass(frozen=True, slots=True)
class Call:
    """What every message of one HTTP call shares: who sent it and how (the request's headers read once)."""

    request: RequestView
    write_key: str
    site: str
    sent_at: str | None
    default_region: str
    received_at: str
    """When the call arrived: one time for all its messages (they came in one body)."""
    last_context: list[Any] | None = None
    """A batch's: the previous message's ``context``, the properties it fell back on and whether it was an
    identify call (as JSON), the context built from them (encoded) and the identifiers its traits gave
    (:func:`message_context`). None: a call of one message, nothing to compare."""


def write_key(request: HitRequest, body: dict[str, Any]) -> str | None:
    """The write key from Basic auth (user part) or the body."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            user = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            return None
        return user or None
    key = body.get("writeKey") or body.get("write_key")
    return key if isinstance(key, str) and key else None


def _str(value: Any, limit: int = 2048) -> str | None:
    """A text field (a number given for it as its digits), cut to ``limit``; None when absent or empty.

    Called a dozen times per message, so a JSON string (the common case) takes the shortest way.
    """
    if type(value) is str:
        return value[:limit] if value else None
    if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
        return str(value)[:limit]
    return None


def _text(value: Any, limit: int) -> str | None:
    """:func:`_str` for a field that is nearly always a JSON string or absent: the shortest way for both."""
    if type(value) is str:
        return value[:limit] if value else None
    return None if value is None else _str(value, limit)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def user_traits(context: dict[str, Any], msg: dict[str, Any], kind: str) -> dict[str, Any]:
    """The person's traits, kept whole (nested ``company``, ``address``: crm-core reads them).

    ``context.traits`` (``context``: the message's) describes the user on any call; an identify call's own
    ``traits`` say it with authority, so they win. A group call's ``traits`` describe the group (its email is not the person's): not these.
    """
    given = context.get("traits")
    traits = dict(given) if isinstance(given, dict) else {}
    if kind == "identify":
        traits.update(_dict(msg.get("traits")))
    return traits


def message_properties(msg: dict[str, Any], kind: str) -> dict[str, Any]:
    """``properties`` as Leadline keeps them: the call's own, plus what each call type adds (an identify call's
    traits are added by :func:`message_event`)."""
    given = msg.get("properties")
    properties = dict(given) if isinstance(given, dict) else {}
    if kind == "track":
        name = _str(msg.get("event"), 200)
        if not name:
            raise BadCall(400, "a track call needs an event name", "no_event_name")
        properties["event"] = name
    elif kind in ("page_view", "screen") and _str(msg.get("name")):
        properties.setdefault("name", _str(msg.get("name"), 200))
    elif kind == "group":
        properties["group_id"] = _str(msg.get("groupId"), 200)
        properties["traits"] = _dict(msg.get("traits"))
    elif kind == "alias":
        properties["previous_id"] = _str(msg.get("previousId"), 200)
    return properties


Context = tuple["dict[str, Any] | orjson.Fragment", dict[str, str]]
"""An event's ``context`` (a dict, or the JSON of one shared by several events of a batch) and the identifiers
its traits give (a dict of the event's own)."""


def message_context(call: Call, ctx: dict[str, Any], properties: dict[str, Any], kind: str) -> Context:
    """``context``: the SDK's view of the page and device (``ctx``, the message's), else the HTTP request's; with
    the user's traits (``ctx.traits``) and the identifiers they give, except on an identify call, whose own traits
    decide (:func:`message_event`).

    The messages of a batch mostly share their context (one page, one device): when a message's context and the
    properties it falls back on are the previous message's, as JSON, the previous one's is used again, encoded
    once for both (``orjson.Fragment``: no object shared between events, and no re-encoding). JSON, not ``==``:
    ``1 == 1.0 == True`` in Python, and the three make different text fields.
    """
    prop = properties.get
    fallback = (prop("url"), prop("referrer"), prop("title"))
    identify = kind == "identify"
    last = call.last_context
    if last is None:
        return _built_context(call, ctx, fallback, identify)
    try:
        seen = orjson.dumps((ctx, fallback, identify))
    except TypeError:  # not what a JSON body parses to (a caller's own dict): no comparing, no remembering
        return _built_context(call, ctx, fallback, identify)
    if last and last[0] == seen:
        return last[1], dict(last[2])
    context, ids = _built_context(call, ctx, fallback, identify)
    encoded = storable_fragment(context)
    last[:] = (seen, encoded, ids)
    return encoded, dict(ids)


def _built_context(
    call: Call, ctx: dict[str, Any], fallback: tuple[Any, Any, Any], identify: bool
) -> tuple[dict[str, Any], dict[str, str]]:
    """:func:`message_context` for a message whose context differs from the previous one's."""
    get = ctx.get
    page = _dict(get("page"))
    url = _text(page.get("url"), 2048) or _text(fallback[0], 2048)
    context: dict[str, Any] = {
        "ip": _text(get("ip"), 64) or call.request.ip,
        "user_agent": _text(get("userAgent"), 512) or call.request.user_agent,
        "site": call.site,
    }
    if url:
        context["url"] = url
    if referrer := _text(page.get("referrer"), 2048) or _text(fallback[1], 2048):
        context["referrer"] = referrer
    if title := _text(page.get("title"), 512) or _text(fallback[2], 512):
        context["title"] = title
    if locale := _text(get("locale"), 32):
        context["locale"] = locale
    given = get("campaign")
    campaign = (
        {k: str(v)[:200] for k, v in given.items() if k in _CAMPAIGN and v} if isinstance(given, dict) else {}
    )
    url_campaign, click_ids = campaign_from_url(url)
    if campaign or url_campaign:
        context["campaign"] = url_campaign | campaign
    if click_ids:
        context["click_ids"] = click_ids
    traits = get("traits")
    if identify or not isinstance(traits, dict) or not traits:
        return context, {}
    traits = dict(traits)
    context["traits"] = traits
    return context, identifiers(traits, call.default_region)


def message_event(call: Call, msg: dict[str, Any], kind: str) -> EncodedEvent:
    """One Segment message as a raw event; raises :class:`BadCall` when it lacks an identity or a name.

    Runs for every message, so a field that is a JSON string (nearly always) is read in line rather than through
    :func:`_text`, and a message without a ``messageId`` gets a new id directly: the same values, fewer calls.
    """
    get = msg.get
    user_id, anon_id = get("userId"), get("anonymousId")
    user_id = (user_id[:200] or None) if type(user_id) is str else _text(user_id, 200)
    anon_id = (anon_id[:200] or None) if type(anon_id) is str else _text(anon_id, 200)
    if not user_id and not anon_id:
        raise BadCall(400, "every message needs a userId or an anonymousId", "no_identity")
    ctx = get("context")
    if type(ctx) is not dict:
        ctx = _dict(ctx)
    properties = message_properties(msg, kind)
    context, ids = message_context(call, ctx, properties, kind)
    if kind == "identify":
        traits = user_traits(ctx, msg, kind)
        properties["traits"] = traits
        if traits:
            ids = identifiers(traits, call.default_region)
    if user_id:
        ids["user_id"] = user_id
    message_id, sent_at, occurred_at = get("messageId"), get("sentAt"), get("timestamp")
    sent_at = (sent_at[:40] or None) if type(sent_at) is str else _text(sent_at, 40)
    occurred_at = (occurred_at[:40] or None) if type(occurred_at) is str else _text(occurred_at, 40)
    return encode_raw(
        new_id() if message_id is None else scoped_id(call.write_key, _text(message_id, 1024)),
        kind,
        "segment",
        call.received_at,
        sent_at or call.sent_at,
        occurred_at or _text(get("originalTimestamp"), 40),
        anon_id,
        ids,
        context,
        properties,
    )


def batch_event(call: Call, item: Any, shared_context: Any) -> EncodedEvent:
    """One item of ``/v1/batch`` as a raw event; raises :class:`BadCall` naming what is wrong with it."""
    if not isinstance(item, dict):
        raise BadCall(400, "a batch item must be a JSON object", "not_an_object")
    given = item.get("type")
    kind = TYPES.get(given if type(given) is str else str(given))
    if kind is None:
        raise BadCall(400, f"unknown message type {str(given)[:40]!r}", "unknown_type")
    if "context" not in item:
        item = item | {"context": shared_context}
    return message_event(call, item, kind)


def batch_events(
    call: Call, body: dict[str, Any], metrics: CollectorMetrics
) -> tuple[list[EncodedEvent], list[dict[str, Any]]]:
    """The usable messages of a batch as events, and what was wrong with the others.

    One bad message must not cost the good ones their place (SDKs do not resend a batch piece by piece), so
    each is judged alone; the refusals are counted and reported by index.
    """
    batch = body.get("batch")
    if not isinstance(batch, list) or len(batch) > MAX_BATCH:
        raise BadCall(400, f"batch must be a list of at most {MAX_BATCH} messages")
    events: list[EncodedEvent] = []
    errors: list[dict[str, Any]] = []
    shared_context = body.get("context")
    for index, item in enumerate(batch):
        try:
            events.append(batch_event(call, item, shared_context))
        except BadCall as exc:
            metrics.rejected.labels(endpoint="segment", reason=exc.reason).inc()
            error: dict[str, Any] = {"index": index, "detail": exc.detail}
            if isinstance(item, dict) and (message_id := _str(item.get("messageId"), 200)):
                error["messageId"] = message_id
            errors.append(error)
    return events, errors


Judged = tuple[list[EncodedEvent], list[dict[str, Any]]] | web.Response
"""A call's events and the batch messages refused, or the refusal to answer with."""


def judge(
    request: HitRequest,
    body: Any,
    call_type: str,
    store: SiteConfigStore,
    metrics: CollectorMetrics,
    default_region: str,
) -> Judged:
    """What a call with a parsed body becomes: events to store, or a refusal (counted). Both HTTP paths call this."""
    try:
        if not isinstance(body, dict):
            raise BadCall(400, "the body must be a JSON object")
        key = write_key(request, body)
        source = store.source(key) if key is not None else None
        if key is None or source is None:
            metrics.rejected.labels(endpoint="segment", reason="write_key").inc()
            return problem(401, "Unauthorized", "unknown or missing write key (HTTP Basic user or writeKey)")
        call = Call(
            RequestView.of(request),
            key,
            source.name or key,
            _str(body.get("sentAt"), 40),
            default_region,
            utc_now_iso(),
            [] if call_type == "batch" else None,
        )
        if call_type != "batch":
            return [message_event(call, body, TYPES[call_type])], []
        events, errors = batch_events(call, body, metrics)
        if errors and not events:
            return problem(400, "Bad request", "no message in the batch is usable", errors=errors)
        return events, errors
    except BadCall as exc:
        metrics.rejected.labels(endpoint="segment", reason=exc.reason).inc()
        return problem(exc.status, "Bad request", exc.detail)


def store_all(sink: Sink, events: list[EncodedEvent]) -> asyncio.Future[None]:
    """One future for every event of a call, resolved once all are durable (no task per event or per call)."""
    try:
        return sink.store_durable(events)
    except SinkUnavailable as exc:
        failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        failed.set_exception(exc)
        return failed


def kinds(events: list[EncodedEvent]) -> dict[str, int]:
    """How many events of each type a call holds: what its answer counts, once they are stored (the events
    themselves need not be kept until then)."""
    if len(events) == 1:  # a single call: no counting loop
        return {events[0].type: 1}
    return tally(list(map(_TYPE, events)))


_TYPE = attrgetter("type")


def answer(
    accepted: dict[str, int],
    errors: list[dict[str, Any]],
    call_type: str,
    metrics: CollectorMetrics,
    error: BaseException | None,
) -> dict[str, Any] | web.Response:
    """The answer once the events' store finished (``error`` if it failed): a JSON document, or a refusal.

    ``accepted``: :func:`kinds` of the events stored."""
    if isinstance(error, SinkUnavailable):
        resp = problem(503, "Unavailable", "events could not be stored now; retry")
        resp.headers["Retry-After"] = "30"
        return resp
    if error is not None:
        raise error
    for kind, count in accepted.items():
        metrics.events.inc(kind, "segment", count)
    if call_type != "batch":
        return SUCCESS
    doc: dict[str, Any] = {"success": True, "accepted": sum(accepted.values()), "rejected": len(errors)}
    if errors:
        doc["errors"] = errors
    return doc


def make_handler(
    sink: Sink, store: SiteConfigStore, metrics: CollectorMetrics, *, default_region: str, body_limit: int
) -> Handler:
    """One handler for every /v1 call; the call type comes from the path (or each batch item)."""

    async def segment(request: web.Request) -> web.StreamResponse:
        call_type = SHORT.get(request.match_info["call"], request.match_info["call"])
        try:
            body = await read_json(request, body_limit, allow_text_plain=True)
        except BodyError as exc:
            metrics.rejected.labels(endpoint="segment", reason=str(exc.status)).inc()
            return problem(exc.status, "Bad request", exc.detail)
        judged = judge(request, body, call_type, store, metrics, default_region)
        if isinstance(judged, web.Response):
            return judged
        events, errors = judged
        error: BaseException | None = None
        try:
            await store_all(sink, events)
        except SinkUnavailable as exc:
            error = exc
        done = answer(kinds(events), errors, call_type, metrics, error)
        return done if isinstance(done, web.Response) else web.json_response(done)

    return segment
