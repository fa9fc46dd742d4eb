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

A single call's event is built here (:mod:`leadline_shared.capture.segment`). A batch's are not: its messages
are judged with the builder's own predicate and the body is stored whole, as one record the enricher splits
with that builder (:mod:`leadline_shared.capture.batches`, docs/proposals/batch-records.md): building each event
was most of what a batched event cost the collector.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from leadline_collector.bodies import BodyError, read_body
from leadline_collector.metrics import CollectorMetrics
from leadline_collector.sink import Sink, SinkUnavailable
from leadline_collector.siteconfig_store import SiteConfigStore
from leadline_collector.visitor import HitRequest
from leadline_shared.capture import batches
from leadline_shared.capture.context import RequestView
from leadline_shared.capture.segment import TYPES, BadCall, Call, judged, message_event, text_of
from leadline_shared.events import EncodedEvent, utc_now_iso
from leadline_shared.http import problem

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SHORT = {"t": "track", "i": "identify", "p": "page", "s": "screen", "g": "group", "a": "alias", "b": "batch"}
"""analytics.js's one-letter paths and the long call each stands for (``/v1/b``: its batching mode)."""
CALLS = (*TYPES, "batch", *SHORT)
"""Every call name a ``/v1/{call}`` path may carry."""
SUCCESS = {"success": True}
MAX_BATCH = 500


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


def judge_batch(
    call: Call, body: dict[str, Any], data: bytes, metrics: CollectorMetrics
) -> tuple[list[EncodedEvent], list[dict[str, Any]], dict[str, int]]:
    """A batch's record (none when no message is usable), what was wrong with the refused messages, and how many
    events of each type the accepted ones make.

    The messages are judged, not built: the enricher builds their events when it splits the record
    (:mod:`leadline_shared.capture.batches`), with the same rules. One bad message must not cost the good ones
    their place (SDKs do not resend a batch piece by piece), so each is judged alone; the refusals are counted
    and reported by index.
    """
    batch = body.get("batch")
    if not isinstance(batch, list) or len(batch) > MAX_BATCH:
        raise BadCall(400, f"batch must be a list of at most {MAX_BATCH} messages")
    errors: list[dict[str, Any]] = []
    accepted: dict[str, int] = {}
    first: dict[str, Any] | None = None
    for index, item in enumerate(batch):
        refused = judged(item)
        if isinstance(refused, str):
            accepted[refused] = accepted.get(refused, 0) + 1
            if first is None:
                first = item
            continue
        metrics.rejected.labels(endpoint="segment", reason=refused.reason).inc()
        error: dict[str, Any] = {"index": index, "detail": refused.detail}
        if isinstance(item, dict) and (message_id := text_of(item.get("messageId"), 200)):
            error["messageId"] = message_id
        errors.append(error)
    if first is None:
        return [], errors, accepted
    return [batches.record(call, data, first, sum(accepted.values()))], errors, accepted


@dataclass(frozen=True, slots=True)
class Taken:
    """What a call becomes: what to store, the batch messages refused, and the events accepted by type."""

    events: list[EncodedEvent]
    """A call's event, or a batch's record (:mod:`leadline_shared.capture.batches`)."""
    errors: list[dict[str, Any]]
    accepted: dict[str, int]
    """What the answer counts once stored (the events themselves need not be kept until then)."""


Judged = Taken | web.Response
"""What a call becomes, or the refusal to answer with."""


def judge(
    request: HitRequest,
    body: Any,
    call_type: str,
    store: SiteConfigStore,
    metrics: CollectorMetrics,
    default_region: str,
    data: bytes | None = None,
) -> Judged:
    """What a call with a parsed body becomes, or a refusal (counted). Both HTTP paths call this.

    ``data``: the body's text, which a batch's record embeds as it is (None: encoded again from ``body``).
    """
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
            text_of(body.get("sentAt"), 40),
            default_region,
            utc_now_iso(),
        )
        if call_type != "batch":
            kind = TYPES[call_type]
            return Taken([message_event(call, body, kind)], [], {kind: 1})
        events, errors, accepted = judge_batch(
            call, body, orjson.dumps(body) if data is None else data, metrics
        )
        if errors and not events:
            return problem(400, "Bad request", "no message in the batch is usable", errors=errors)
        return Taken(events, errors, accepted)
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


def answer(
    accepted: dict[str, int],
    errors: list[dict[str, Any]],
    call_type: str,
    metrics: CollectorMetrics,
    error: BaseException | None,
) -> dict[str, Any] | web.Response:
    """The answer once the events' store finished (``error`` if it failed): a JSON document, or a refusal.

    ``accepted``: :attr:`Taken.accepted`."""
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
    total = sum(accepted.values())
    if total:  # stored as one record (judge_batch)
        metrics.batch_records.inc()
        metrics.batch_record_events.inc(total)
    doc: dict[str, Any] = {"success": True, "accepted": total, "rejected": len(errors)}
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
            body, data = await read_body(request, body_limit, allow_text_plain=True)
        except BodyError as exc:
            metrics.rejected.labels(endpoint="segment", reason=str(exc.status)).inc()
            return problem(exc.status, "Bad request", exc.detail)
        judged = judge(request, body, call_type, store, metrics, default_region, data)
        if isinstance(judged, web.Response):
            return judged
        error: BaseException | None = None
        try:
            await store_all(sink, judged.events)
        except SinkUnavailable as exc:
            error = exc
        done = answer(judged.accepted, judged.errors, call_type, metrics, error)
        return done if isinstance(done, web.Response) else web.json_response(done)

    return segment
