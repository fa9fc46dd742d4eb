"""The event envelope: one definition, strict on what matters, and forward compatible."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadline_shared.events import (
    EncodedEvent,
    EnrichedEvent,
    EventError,
    IdentityChange,
    RawEvent,
    encode_raw,
    merge_request,
    merge_request_of,
    storable,
    storable_fragment,
    utc_now_iso,
)
from leadline_shared.ids import event_id_from, new_id, valid_client_id


def make_raw(**kw: object) -> RawEvent:
    base: dict[str, object] = {
        "event_id": new_id(),
        "type": "page_view",
        "source": "pixel",
        "received_at": utc_now_iso(),
    }
    base.update(kw)
    return RawEvent(**base)  # type: ignore[arg-type]


def test_round_trip_keeps_every_field() -> None:
    ev = make_raw(
        anon_id="v1",
        ids={"email": "a@b.co"},
        context={"url": "https://x.example/"},
        properties={"k": 1},
        form={"key": "demo", "fields": {"email": "a@b.co"}},
    )
    assert RawEvent.from_json(ev.to_json()) == ev


def test_unknown_fields_survive_a_round_trip() -> None:
    doc = orjson.loads(make_raw().to_json())
    doc["future_field"] = {"nested": True}
    again = RawEvent.from_json(orjson.dumps(doc))
    assert orjson.loads(again.to_json())["future_field"] == {"nested": True}


@pytest.mark.parametrize(
    ("patch", "reason"),
    [
        ({"type": "explode"}, "unknown event type"),
        ({"source": "carrier-pigeon"}, "unknown source"),
        ({"event_id": ""}, "event_id"),
        ({"ids": {"email": 5}}, "identifiers"),
        ({"context": []}, "context"),
    ],
)
def test_invalid_events_are_rejected_with_a_reason(patch: dict[str, object], reason: str) -> None:
    doc = orjson.loads(make_raw().to_json()) | patch
    with pytest.raises(EventError, match=reason):
        RawEvent.from_json(orjson.dumps(doc))


@pytest.mark.parametrize("data", [b"not json", b"[1,2]", b""])
def test_garbage_is_an_event_error(data: bytes) -> None:
    with pytest.raises(EventError):
        RawEvent.from_json(data)


def test_key_is_the_visitor_else_the_strongest_identifier() -> None:
    assert make_raw(anon_id="v1", ids={"email": "a@b.co"}).key() == b"v1"
    assert make_raw(ids={"email": "a@b.co", "user_id": "u7"}).key() == b"user_id:u7"


def test_enriched_event_adds_person_and_round_trips() -> None:
    raw = make_raw(anon_id="v1")
    enriched = EnrichedEvent.from_raw(raw, "p1", referrer_class="direct")
    again = EnrichedEvent.from_json(enriched.to_json())
    assert (again.person_id, again.anon_id, again.referrer_class) == ("p1", "v1", "direct")
    with pytest.raises(EventError, match="person_id"):
        EnrichedEvent.from_json(raw.to_json())


def test_identity_change_round_trip_and_validation() -> None:
    change = IdentityChange(change_id=new_id(), kind="merge", person_id="p1", at=utc_now_iso(), merged=["p2"])
    assert IdentityChange.from_json(change.to_json()) == change
    with pytest.raises(EventError):
        IdentityChange.from_json(orjson.dumps({"kind": "teleport"}))


def test_client_ids_are_kept_only_when_valid() -> None:
    uid = "0190b3f0-7c1e-7cc2-9a57-1f1e1a2b3c4d"
    assert event_id_from(uid) == uid
    assert valid_client_id("01ARZ3NDEKTSV4RRFFQ69G5FAV") == "01ARZ3NDEKTSV4RRFFQ69G5FAV"
    assert valid_client_id("'; drop table") is None
    assert event_id_from("nope") != "nope"
    assert new_id() != new_id()


_maybe_text = st.none() | st.text(max_size=12)
_small_dict = st.dictionaries(st.text(max_size=6), st.text(max_size=6) | st.integers(), max_size=3)


@settings(max_examples=200, deadline=None)
@given(
    sent_at=_maybe_text,
    occurred_at=_maybe_text,
    anon_id=_maybe_text,
    ids=st.dictionaries(st.sampled_from(["email", "phone"]), st.text(max_size=8), max_size=2),
    context=_small_dict,
    properties=_small_dict,
    form=st.none() | _small_dict,
    link=st.none() | _small_dict,
    affiliate=st.none() | _small_dict,
    extra=st.dictionaries(st.sampled_from(["future", "type", "zz"]), st.integers(), max_size=2),
)
def test_the_fast_wire_form_equals_the_generic_one(**fields: Any) -> None:
    """RawEvent.to_dict is written out by hand for speed; it must say exactly what the field walk says."""
    ev = make_raw(**fields)
    fast, generic = ev.to_dict(), ev._to_dict_generic()
    assert list(fast.items()) == list(generic.items())


_odd_text = st.text(alphabet=st.sampled_from(["a", "\x00", "\\", '"', "\u00e9", "\ud800", "\n"]), max_size=6)
_any_text = st.text(max_size=8) | _odd_text
_key_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=8)
"""What a key is made of: a visitor id or an identifier, never a lone surrogate (neither key() encodes one)."""
_json_dict = st.dictionaries(
    _any_text,
    _any_text | st.integers(-(2**63), 2**63 - 1) | st.booleans() | st.lists(_any_text, max_size=2),
    max_size=3,
)


@settings(max_examples=300, deadline=None)
@given(
    sent_at=st.none() | _any_text,
    occurred_at=st.none() | _any_text,
    anon_id=st.none() | _key_text,
    ids=st.dictionaries(st.sampled_from(["email", "phone", "user_id"]), _key_text, max_size=3),
    context=_json_dict,
    properties=_json_dict,
    form=st.none() | _json_dict,
    shared_context=st.booleans(),
)
def test_an_event_encoded_directly_is_the_raw_event_with_the_same_fields(
    shared_context: bool, **fields: Any
) -> None:
    """The collector's busiest routes encode their events straight away (``encode_raw``), with a context encoded
    once for a whole batch: the key and the bytes must be exactly those of the RawEvent with the same fields
    (NUL characters and text that was not UTF-8 included), so the raw topic's readers see the same events."""
    event_id = new_id()
    raw = make_raw(
        event_id=event_id, type="track", source="segment", received_at="2026-11-30T12:00:00.000Z", **fields
    )
    context = storable_fragment(fields["context"]) if shared_context else fields["context"]
    encoded = encode_raw(
        event_id,
        "track",
        "segment",
        "2026-11-30T12:00:00.000Z",
        fields["sent_at"],
        fields["occurred_at"],
        fields["anon_id"],
        fields["ids"],
        context,
        fields["properties"],
        fields["form"],
    )
    assert isinstance(encoded, EncodedEvent)
    assert (encoded.event_id, encoded.type, encoded.source) == (event_id, "track", "segment")
    assert encoded.key() == raw.key()
    assert encoded.to_json() == raw.to_json()
    assert encoded.decoded() == RawEvent.from_json(raw.to_json())


def test_an_escaped_backslash_before_u0000_is_text_not_a_nul() -> None:
    """The NUL scan looks for a backslash first; text holding a backslash and ``u0000`` is kept as it is."""
    ev = make_raw(properties={"a": "\\u0000", "b": "x\x00y"})
    assert orjson.loads(ev.to_json())["properties"] == {"a": "\\u0000", "b": "xy"}


def test_text_that_was_not_utf8_is_encoded_with_replacement_characters() -> None:
    """Header bytes that are not UTF-8 arrive as lone surrogates; the event is still encoded, not refused."""
    garbled = b"caf\xe9 \xff".decode("utf-8", "surrogateescape")
    ev = make_raw(context={"user_agent": garbled, garbled: 1}, properties={"list": [garbled]})
    doc = orjson.loads(ev.to_json())
    assert doc["context"]["user_agent"] == "caf\ufffd \ufffd"
    assert doc["context"]["caf\ufffd \ufffd"] == 1
    assert doc["properties"]["list"] == ["caf\ufffd \ufffd"]


@pytest.mark.parametrize("fraction", [0.0, 0.0004, 0.0015, 0.5, 0.9994, 0.9999])
def test_received_at_is_iso_8601_utc_with_milliseconds(
    monkeypatch: pytest.MonkeyPatch, fraction: float
) -> None:
    """The cached second and the millisecond table give what datetime gives, up to the last millisecond."""
    now = 1_795_000_000 + fraction
    monkeypatch.setattr("leadline_shared.events.time.time", lambda: now)
    expected = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert utc_now_iso() == expected


def test_received_at_truncates_to_the_millisecond_and_never_rolls_into_the_next_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("leadline_shared.events.time.time", lambda: 1_795_000_000.99999976)
    assert utc_now_iso().endswith(":40.999Z")


def test_nul_characters_are_left_out_of_the_wire_form_so_the_event_can_be_stored() -> None:
    """PostgreSQL cannot hold NUL: the envelope drops it where the collector encodes (issue 11), the rest stays."""
    ev = make_raw(form={"key": "demo", "fields": {"name": "Ada\x00 Lovelace", "n\x00te": ["a\x00b"]}})
    doc = orjson.loads(ev.to_json())
    assert doc["form"]["fields"] == {"name": "Ada Lovelace", "nte": ["ab"]}
    assert b"\\u0000" not in ev.to_json()


def test_storable_keeps_a_literal_backslash_u0000_and_other_control_characters() -> None:
    assert storable({"a": "\\u0000", "b": "tab\there\x01"}) == {"a": "\\u0000", "b": "tab\there\x01"}
    x, surrogate = storable(["x\x00", "\ud800"])
    assert x == "x"
    assert set(surrogate) == {"\ufffd"}


def test_a_conflict_change_round_trips_and_names_the_other_person() -> None:
    """crm-core reads the graph's conflicts from identity.changes.v1 (issue 12); one without the other person
    is refused (dead-lettered) rather than recorded half."""
    change = IdentityChange(
        change_id=new_id(),
        kind="conflict",
        person_id=new_id(),
        at=utc_now_iso(),
        identifier={"type": "email"},
        other=new_id(),
        event_id="e1",
    )
    assert IdentityChange.from_json(change.to_json()) == change
    doc = orjson.loads(change.to_json())
    del doc["other"]
    with pytest.raises(EventError, match="other"):
        IdentityChange.from_json(orjson.dumps(doc))
    merge = IdentityChange(
        change_id=new_id(), kind="merge", person_id=new_id(), at=utc_now_iso(), merged=["a"]
    )
    assert "event_id" not in orjson.loads(merge.to_json())  # an automatic merge names no request


def test_a_merge_request_is_crm_cores_raw_event_and_only_crm_cores_counts() -> None:
    survivor, other = new_id(), new_id()
    request = RawEvent.from_json(merge_request(survivor, [other], "r1").to_json())
    assert (request.type, request.source, request.event_id) == ("merge", "api", "r1")
    assert request.key() == f"crm_contact_id:{survivor}".encode()
    assert merge_request_of(request) == (survivor, [other])
    request.source = "segment"
    assert merge_request_of(request) is None
    assert merge_request_of(make_raw()) is None
