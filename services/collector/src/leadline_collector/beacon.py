"""``POST /e``: batched events from the capture snippet (fetch with JSON, or sendBeacon with text/plain).

Each item carries the snippet's own event id, so a batch retried after a lost answer is deduplicated
downstream. Bad items are counted and skipped; the rest of the batch is kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from leadline_collector.bodies import BodyError, read_body
from leadline_collector.metrics import CollectorMetrics
from leadline_collector.sink import Sink, SinkUnavailable, tally
from leadline_collector.visitor import HitRequest, privacy_opt_out, set_cookie, visitor_id
from leadline_shared.capture import batches
from leadline_shared.capture.beacon import item_kind
from leadline_shared.capture.context import RequestView
from leadline_shared.events import EncodedEvent, utc_now_iso
from leadline_shared.http import problem

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_ITEMS = 100


def _text(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def take(
    request: HitRequest,
    body: Any,
    sink: Sink,
    metrics: CollectorMetrics,
    default_region: str,
    data: bytes | None = None,
) -> tuple[dict[str, int], str | None] | web.Response:
    """Record a parsed beacon's usable items: the answer's counts and the visitor id to set as the cookie (None:
    none), or the refusal of a body that is not a batch. Both HTTP paths call this.

    The items are judged (:func:`leadline_shared.capture.beacon.item_kind`), not built: the beacon is stored as
    one record holding ``data``, its text (None: encoded again from ``body``), which the enricher splits into
    the items' events (:mod:`leadline_shared.capture.batches`).
    """
    if data is None:
        data = orjson.dumps(body)
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
    kinds = [kind for item in items if (kind := item_kind(item)) is not None]
    accepted = 0
    if kinds:
        record = batches.beacon_record(
            RequestView.of(request),
            data,
            anon_id,
            sent_at,
            default_region,
            opted_out,
            utc_now_iso(),
            len(kinds),
        )
        accepted = _store(sink, metrics, record, kinds)
    rejected = len(body) - accepted
    if rejected:
        metrics.rejected.labels(endpoint="beacon", reason="item").inc(rejected)
    return {"accepted": accepted, "rejected": rejected}, None if no_cookie else anon_id


def _store(sink: Sink, metrics: CollectorMetrics, record: EncodedEvent, kinds: list[str]) -> int:
    """Store a beacon's record without waiting; how many events it carries were accepted (none when the sink
    cannot take it: those are counted as dropped)."""
    try:
        sink.store_all_nowait([record])
    except SinkUnavailable:
        metrics.dropped.labels(source="beacon").inc(len(kinds))
        return 0
    for kind, count in tally(kinds).items():
        metrics.events.inc(kind, "beacon", count)
    metrics.batch_records.inc()
    metrics.batch_record_events.inc(len(kinds))
    return len(kinds)


def make_handler(
    sink: Sink, metrics: CollectorMetrics, *, cookie_domain: str, default_region: str, body_limit: int
) -> Handler:
    """The beacon route."""

    async def beacon(request: web.Request) -> web.StreamResponse:
        try:
            body, data = await read_body(request, body_limit, allow_text_plain=True)
        except BodyError as exc:
            metrics.rejected.labels(endpoint="beacon", reason=str(exc.status)).inc()
            return problem(exc.status, "Bad beacon", exc.detail)
        taken = take(request, body, sink, metrics, default_region, data)
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
