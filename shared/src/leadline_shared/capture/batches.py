"""A Segment batch or a snippet beacon published whole: the record the collector writes for a ``/v1/batch`` or
``/e`` call, and its split into the events its messages make, which the enricher does
(docs/proposals/batch-records.md).

Building each message's event cost the collector about 4 of the 9 to 10 µs a batched event took, and the
collector must accept 150,000 batched events a second on one process (issue 18). So for a batch it only judges
the messages (:func:`leadline_shared.capture.segment.refusal`: its answer still says which count and why the
others do not) and publishes one record holding the body as the client sent it. The enricher splits the record
with the builder the collector used before, so every message still becomes the same event.

The record is a raw event of type :data:`SEGMENT_BATCH` on capture.raw.v1: the collector's publisher, spool and
durable acknowledgement carry it as they carry any event, and the enricher reads it off the topic it already
consumes. Its ``properties``:

- ``call``: what the builder needs of the request (its :class:`RequestView`, write key, site, the body's
  ``sentAt``, the phone region), read once by the collector;
- ``events``: how many of the messages the collector accepted (what the split gives);
- ``body``: the body itself (once inflated), embedded as its JSON text, never parsed into objects or encoded
  again on the collector's side.

Its key is the first accepted message's ``anonymousId``, else its ``userId``: a browser's batch is one visitor's,
so that visitor's records stay on one partition, and the split events are keyed by their own identities.

A beacon's record (:data:`BEACON_BATCH`, :func:`beacon_record`) is the same, with the beacon's own facts in
``call`` (the visitor id the collector chose, the privacy decision, the body's ``sent_at``) and its items made
into events by :func:`leadline_shared.capture.beacon.item_event`. It is keyed by the visitor id, as its events
are, so a visitor's order holds.
"""

from __future__ import annotations

from typing import Any

import orjson

from leadline_shared.capture.beacon import item_event
from leadline_shared.capture.context import RequestView
from leadline_shared.capture.segment import BadCall, Call, identity_of, judged, message_event
from leadline_shared.events import BEACON_BATCH, SEGMENT_BATCH, EncodedEvent, RawEvent, encode_raw
from leadline_shared.ids import new_id

__all__ = ["BEACON_BATCH", "SEGMENT_BATCH", "TYPES", "RecordError", "beacon_record", "record", "split"]

TYPES = frozenset({SEGMENT_BATCH, BEACON_BATCH})
"""The types of the records :func:`split` splits."""


class RecordError(ValueError):
    """A record that cannot be split (not what :func:`record` writes); the reason is fit for a DLQ header."""


def record(call: Call, body: bytes, first: dict[str, Any], events: int) -> EncodedEvent:
    """The record of a batch whose text is ``body``, ``first`` being its first accepted message and ``events``
    the number accepted."""
    user_id, anon_id = identity_of(first)
    view = call.request
    request = {
        "ip": view.ip,
        "user_agent": view.user_agent,
        "locale": view.locale,
        "consent": list(view.consent) if view.consent is not None else None,
        "write_key": call.write_key,
        "site": call.site,
        "sent_at": call.sent_at,
        "default_region": call.default_region,
    }
    return encode_raw(
        new_id(),
        SEGMENT_BATCH,
        "segment",
        call.received_at,
        call.sent_at,
        None,
        anon_id,
        {"user_id": user_id} if user_id and not anon_id else {},
        {},
        {"call": request, "events": events, "body": orjson.Fragment(body)},
    )


def beacon_record(
    view: RequestView,
    body: bytes,
    anon_id: str | None,
    sent_at: str | None,
    default_region: str,
    opted_out: bool,
    received_at: str,
    events: int,
) -> EncodedEvent:
    """The record of a beacon whose text is ``body``: ``anon_id`` the visitor id its events carry (None: none,
    the visitor declined), ``opted_out`` whether its identifiers and form fields are left out, ``events`` the
    number of items the collector accepted."""
    request = {
        "ip": view.ip,
        "user_agent": view.user_agent,
        "locale": view.locale,
        "consent": list(view.consent) if view.consent is not None else None,
        "anon_id": anon_id,
        "opted_out": opted_out,
        "sent_at": sent_at,
        "default_region": default_region,
    }
    return encode_raw(
        new_id(),
        BEACON_BATCH,
        "beacon",
        received_at,
        sent_at,
        None,
        anon_id,
        {},
        {},
        {"call": request, "events": events, "body": orjson.Fragment(body)},
    )


def split(raw: RawEvent) -> list[EncodedEvent]:
    """The events a record's accepted messages make, in the body's order, as the collector built them before.

    Raises :class:`RecordError` when the record is not one :func:`record` or :func:`beacon_record` wrote.
    """
    if raw.type == BEACON_BATCH:
        return _split_beacon(raw)
    if raw.type != SEGMENT_BATCH:
        raise RecordError(f"{raw.type!r} is not a record type")
    properties = raw.properties
    request, body = properties.get("call"), properties.get("body")
    if not isinstance(request, dict) or not isinstance(body, dict) or not isinstance(body.get("batch"), list):
        raise RecordError("a segment_batch record needs properties.call and a body with a batch list")
    call = Call(_view(request), *_strings(request), raw.received_at, [])
    shared_context = body.get("context")
    events: list[EncodedEvent] = []
    for item in body["batch"]:
        kind = judged(item)
        if not isinstance(kind, BadCall):
            if "context" not in item:
                item = item | {"context": shared_context}
            events.append(message_event(call, item, kind))
    return events


def _split_beacon(raw: RawEvent) -> list[EncodedEvent]:
    request, body = raw.properties.get("call"), raw.properties.get("body")
    if not isinstance(request, dict):
        raise RecordError("a beacon_batch record needs properties.call")
    items = body.get("batch") if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise RecordError("a beacon_batch record's body must be a list of items or {'batch': [...]}")
    anon_id, opted_out, sent_at, region = (
        request.get(k) for k in ("anon_id", "opted_out", "sent_at", "default_region")
    )
    if not (anon_id is None or isinstance(anon_id, str)) or not isinstance(opted_out, bool):
        raise RecordError("a beacon_batch record's call needs anon_id (text or null) and opted_out")
    if not (sent_at is None or isinstance(sent_at, str)) or not isinstance(region, str):
        raise RecordError("a beacon_batch record's sent_at must be text, and it needs a phone region")
    view = _view(request)
    contexts: dict[Any, Any] = {}
    events: list[EncodedEvent] = []
    for item in items:
        if isinstance(item, dict):
            event = item_event(view, item, anon_id, sent_at, region, opted_out, raw.received_at, contexts)
            if event is not None:
                events.append(event)
    return events


def _view(request: dict[str, Any]) -> RequestView:
    ip, user_agent, locale, consent = (request.get(k) for k in ("ip", "user_agent", "locale", "consent"))
    if not (ip is None or isinstance(ip, str)) or not isinstance(user_agent, str):
        raise RecordError("a segment_batch record's call needs an ip and a user agent")
    if not (locale is None or isinstance(locale, str)):
        raise RecordError("a segment_batch record's locale must be text")
    if consent is not None and not (isinstance(consent, list) and len(consent) == 2):
        raise RecordError("a segment_batch record's consent must be [dnt, gpc]")
    return RequestView(ip, user_agent, locale, (bool(consent[0]), bool(consent[1])) if consent else None)


def _strings(request: dict[str, Any]) -> tuple[str, str, str | None, str]:
    write_key, site, sent_at, region = (
        request.get(k) for k in ("write_key", "site", "sent_at", "default_region")
    )
    if not isinstance(write_key, str) or not isinstance(site, str) or not isinstance(region, str):
        raise RecordError("a segment_batch record's call needs a write key, a site and a phone region")
    if not (sent_at is None or isinstance(sent_at, str)):
        raise RecordError("a segment_batch record's sent_at must be text")
    return write_key, site, sent_at, region
