"""A Segment batch published whole and split by the enricher gives the events the collector used to build, and the
collector's judgement of a message (its answer) agrees with what the split builds."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadline_shared.capture import batches, beacon
from leadline_shared.capture.context import RequestView
from leadline_shared.capture.segment import TYPES, BadCall, Call, batch_event, judged, message_event, refusal
from leadline_shared.events import BEACON_BATCH, SEGMENT_BATCH, EncodedEvent, RawEvent

VIEW = RequestView("203.0.113.9", "Mozilla/5.0 (X11) Test/1.0", "de-DE", (True, False))
RECEIVED = "2026-12-01T10:00:00.000Z"
UUID = "0192f0c4-5b7a-7cc0-8d5e-2f1a9b3c4d5e"


def call(sent_at: str | None = "2026-12-01T09:59:59.900Z") -> Call:
    return Call(VIEW, "wk_unit", "Unit site", sent_at, "DE", RECEIVED, [])


def published(record: EncodedEvent) -> RawEvent:
    """The record as the enricher reads it off the topic."""
    return RawEvent.from_json(record.wire_value)


def before(body: dict[str, Any]) -> list[dict[str, Any]]:
    """What the collector built for the batch before it published records: each usable message's event."""
    built = []
    for item in body["batch"]:
        try:
            built.append(batch_event(call(body.get("sentAt")), item, body.get("context")))
        except BadCall:
            continue
    return [orjson.loads(event.wire_value) for event in built]


def after(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The record's split, as the enricher publishes it."""
    accepted = [item for item in body["batch"] if refusal(item) is None]
    record = batches.record(call(body.get("sentAt")), orjson.dumps(body), accepted[0], len(accepted))
    return [orjson.loads(event.wire_value) for event in batches.split(published(record))]


def test_a_record_splits_into_the_events_the_collector_built_before() -> None:
    body = {
        "writeKey": "wk_unit",
        "sentAt": "2026-12-01T09:59:59.900Z",
        "context": {"page": {"url": "https://shop.example/?utm_source=news&gclid=g1"}, "locale": "en-GB"},
        "batch": [
            {"type": "page", "name": "Home", "anonymousId": "a-1", "messageId": "m-1"},
            {
                "type": "track",
                "event": "Added",
                "anonymousId": "a-1",
                "messageId": "m-2",
                "properties": {"n": 2},
            },
            {"type": "track", "anonymousId": "a-1", "messageId": "m-3"},  # no event name: refused
            {"type": "identify", "userId": "u-1", "messageId": "m-4", "traits": {"email": "Dee@Example.com"}},
            {"type": "track", "event": "x", "anonymousId": "a-2", "messageId": "m-5", "context": None},
            "not an object",
        ],
    }
    events = after(body)
    assert events == before(body)
    assert [e["type"] for e in events] == ["page_view", "track", "identify", "track"]
    assert events[0]["context"]["campaign"] == {"source": "news"}
    assert events[0]["context"]["ip"] == "203.0.113.9"
    assert events[0]["context"]["locale"] == "en-GB"
    assert events[2]["ids"] == {"email": "dee@example.com", "user_id": "u-1"}
    assert all(e["received_at"] == RECEIVED for e in events)


def test_the_record_is_keyed_by_the_first_accepted_messages_identity() -> None:
    first = {"type": "track", "event": "e", "userId": "u-9"}
    record = batches.record(call(), orjson.dumps({"batch": [first]}), first, 1)
    assert record.type == SEGMENT_BATCH
    assert record.wire_key == b"user_id:u-9"  # as a lone event of that message would be keyed
    first = {"type": "track", "event": "e", "userId": "u-9", "anonymousId": "a-9"}
    record = batches.record(call(), orjson.dumps({"batch": [first]}), first, 1)
    assert record.wire_key == b"a-9"
    assert published(record).properties["events"] == 1


def test_a_body_with_a_nul_the_store_refuses_is_made_storable_by_the_split() -> None:
    """A NUL in the body travels in the record as the client sent it; the events made from it are storable (no
    NUL), as the collector's were."""
    text = rb'{"batch":[{"type":"track","event":"a\u0000b","anonymousId":"a-1","properties":{"k":"\u00e9\u0000"}}]}'
    body = orjson.loads(text)
    record = batches.record(call(None), text, body["batch"][0], 1)
    [event] = batches.split(published(record))
    assert b"\\u0000" not in event.wire_value
    decoded = orjson.loads(event.wire_value)
    assert decoded["properties"] == {"k": "\u00e9", "event": "ab"}
    assert comparable([decoded], body["batch"]) == comparable(before(body), body["batch"])


@pytest.mark.parametrize(
    "properties",
    [
        {},
        {"events": 1, "body": {"batch": []}},
        {"call": {"ip": None}, "body": {"batch": []}},
        {
            "call": {"ip": 1, "user_agent": "x", "write_key": "k", "site": "s", "default_region": "DE"},
            "body": {},
        },
        {
            "call": {
                "user_agent": "x",
                "write_key": "k",
                "site": "s",
                "default_region": "DE",
                "consent": [1],
            },
            "body": {"batch": []},
        },
        {
            "call": {"user_agent": "x", "write_key": 5, "site": "s", "default_region": "DE"},
            "body": {"batch": []},
        },
    ],
)
def test_a_record_that_is_not_one_the_collector_writes_cannot_be_split(properties: dict[str, Any]) -> None:
    raw = RawEvent.from_dict(
        {"event_id": "r-1", "type": SEGMENT_BATCH, "source": "segment", "received_at": RECEIVED}
        | {"properties": properties}
    )
    with pytest.raises(batches.RecordError):
        batches.split(raw)


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 2),
    st.just(1.5),
    st.sampled_from(["", " ", "x", "a-1"]),
    st.just([]),
)
_ITEMS = st.one_of(
    _VALUES,
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.one_of(
                _VALUES, st.sampled_from(["track", "page", "identify", "group", "alias", "screen"])
            ),
            "userId": _VALUES,
            "anonymousId": _VALUES,
            "event": _VALUES,
            "name": _VALUES,
            "messageId": st.sampled_from(["m-1", "m-2"]),
            "properties": st.one_of(_VALUES, st.just({"url": "https://x.example/"})),
            "context": st.one_of(_VALUES, st.just({"traits": {"email": "a@b.example"}})),
            "traits": st.one_of(_VALUES, st.just({"email": "c@d.example"})),
        },
    ),
)


@settings(max_examples=300, deadline=None)
@given(items=st.lists(_ITEMS, min_size=1, max_size=6))
def test_what_the_collector_accepts_is_exactly_what_the_split_builds(items: list[Any]) -> None:
    """The collector answers a batch from :func:`judged` alone; the enricher then builds the events with
    :func:`message_event`, which checks the message itself. They must agree message by message, or an answer
    would count an event that is never stored, or miss one that is."""
    body = {"batch": items}
    for item in items:
        kind = judged(item)
        given = item.get("type") if isinstance(item, dict) else None
        if not isinstance(item, dict) or TYPES.get(given if type(given) is str else str(given)) is None:
            assert isinstance(kind, BadCall)  # not an object, or no type: nothing to build
            continue
        built = built_by_message_event(item, TYPES[given if type(given) is str else str(given)])
        if isinstance(kind, BadCall):
            assert built is not None, item  # message_event refuses it too, for the same reason
            assert (kind.status, kind.detail, kind.reason) == (built.status, built.detail, built.reason)
        else:
            assert built is None, (item, built)
    accepted = [item for item in items if refusal(item) is None]
    if accepted:
        assert comparable(after(body), accepted) == comparable(before(body), accepted)


def built_by_message_event(item: dict[str, Any], kind: str) -> BadCall | None:
    """What :func:`message_event` (the builder, with its own checks) raises for the item (None: it builds)."""
    try:
        message_event(call(), item, kind)
    except BadCall as exc:
        return exc
    return None


def comparable(events: list[dict[str, Any]], items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events without the ids made up for messages that had no ``messageId`` (new on every build)."""
    assert len(events) == len(items)
    return [
        e if "messageId" in item else {k: v for k, v in e.items() if k != "event_id"}
        for e, item in zip(events, items, strict=True)
    ]


def beacon_before(items: list[Any], anon_id: str | None, opted_out: bool) -> list[dict[str, Any]]:
    """What the collector built for a beacon before it published records: each usable item's event."""
    contexts: dict[Any, Any] = {}
    built = [
        beacon.item_event(
            VIEW, item, anon_id, "2026-12-01T09:59:59.000Z", "DE", opted_out, RECEIVED, contexts
        )
        for item in items
        if isinstance(item, dict)
    ]
    return [orjson.loads(event.wire_value) for event in built if event is not None]


def beacon_after(items: list[Any], anon_id: str | None, opted_out: bool) -> list[dict[str, Any]]:
    body = {"sent_at": "2026-12-01T09:59:59.000Z", "batch": items}
    kinds = [beacon.item_kind(item) for item in items if isinstance(item, dict)]
    record = batches.beacon_record(
        VIEW, orjson.dumps(body), anon_id, "2026-12-01T09:59:59.000Z", "DE", opted_out, RECEIVED, len(kinds)
    )
    assert record.type == BEACON_BATCH
    assert record.wire_key == (anon_id or record.event_id).encode()
    return [orjson.loads(event.wire_value) for event in batches.split(published(record))]


_BEACON_ITEMS = st.one_of(
    _VALUES,
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.one_of(
                _VALUES, st.sampled_from(["page_view", "page", "track", "identify", "form_submit"])
            ),
            "name": _VALUES,
            "id": st.sampled_from([UUID, "x-1"]),
            "url": st.sampled_from(["https://shop.example/?utm_source=n", "https://shop.example/b"]),
            "props": st.one_of(_VALUES, st.just({"plan": "pro"})),
            "traits": st.one_of(_VALUES, st.just({"email": "Eve@Example.com", "phone": "+44 20 7946 0958"})),
            "form": st.just({"id": "f-1", "fields": {"email": "ann@example.com", "ok": True}}),
            "consent": st.one_of(_VALUES, st.just({"analytics": True, "marketing": False})),
        },
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    items=st.lists(_BEACON_ITEMS, min_size=1, max_size=6),
    anon_id=st.sampled_from([None, "v-1"]),
    opted_out=st.booleans(),
)
def test_a_beacon_record_splits_into_the_events_the_collector_built_before(
    items: list[Any], anon_id: str | None, opted_out: bool
) -> None:
    """A beacon's items, built by the enricher from its record, are the events the collector built from them; the
    items the collector counts as accepted (``item_kind``) are exactly those."""
    made = beacon_after(items, anon_id, opted_out)
    with_ids = [item for item in items if isinstance(item, dict) and beacon.item_kind(item) is not None]
    assert len(made) == len(with_ids)
    keep = [item.get("id") == UUID for item in with_ids]  # any other id is made up anew on every build
    assert drop_new_ids(made, keep) == drop_new_ids(beacon_before(items, anon_id, opted_out), keep)


def drop_new_ids(events: list[dict[str, Any]], keep: list[bool]) -> list[dict[str, Any]]:
    return [
        e if k else {n: v for n, v in e.items() if n != "event_id"} for e, k in zip(events, keep, strict=True)
    ]
