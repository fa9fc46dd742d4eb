"""The event envelope, defined once and used by every producer and consumer (architecture.md §3).

Events travel as orjson-encoded JSON objects. Decoding keeps fields this version does not know in ``extra`` and
writes them back on encoding, so an older service forwards a newer producer's fields instead of dropping them.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import orjson

SCHEMA_VERSION = 1
SEGMENT_BATCH = "segment_batch"
"""A whole Segment batch as the collector publishes it, split into its events by the enricher and never stored
(:mod:`leadline_shared.capture.batches`)."""
BEACON_BATCH = "beacon_batch"
"""A whole snippet beacon (``POST /e``) as the collector publishes it, split like :data:`SEGMENT_BATCH`."""
EVENT_TYPES = frozenset(
    {
        SEGMENT_BATCH,
        BEACON_BATCH,
        "page_view",
        "email_open",
        "link_click",
        "ad_click",
        "ad_impression",  # an affiliate's ad shown on their site: no anon_id, no person; counted (architecture.md §12)
        "form_submit",
        "track",
        "identify",
        "alias",
        "screen",
        "group",
        "unlink",  # source api only: the CRM says ``crm_contact_id`` no longer holds the other ids of the event
        "merge",  # source api only: a rep confirmed that other persons are ``crm_contact_id`` (merge_request)
        "erase",  # source api only: an admin asked to erase the person ``crm_contact_id`` (erase_request)
    }
)
SOURCES = frozenset({"pixel", "link", "affiliate", "form", "beacon", "segment", "api"})
IDENTIFIER_TYPES = ("user_id", "email", "phone", "recipient_token", "crm_contact_id")


class EventError(ValueError):
    """The bytes are not a valid event; the reason is fit for a DLQ header."""


_second: list[Any] = [-1, ""]
_MILLIS = tuple(f".{ms:03d}Z" for ms in range(1000))


def utc_now_iso() -> str:
    """The server clock as ISO 8601 with milliseconds, in UTC (``2026-11-24T10:00:00.123Z``).

    On every captured event, so the formatted second is cached: a fifth of what ``datetime.isoformat`` costs.
    """
    now = time.time()
    sec = int(now)
    if sec != _second[0]:
        _second[:] = [sec, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))]
    formatted: str = _second[1]
    return formatted + _MILLIS[int((now - sec) * 1000)]


def storable(value: Any) -> Any:
    """``value`` with every string, keys included, made fit for PostgreSQL text and jsonb.

    What a client sends is accepted as it comes, so the envelope decides once what can be stored: valid UTF-8
    (a lone surrogate, or a byte a client sent that is not UTF-8, becomes U+FFFD) without NUL characters,
    which PostgreSQL cannot hold at all and which are dropped. Applied by :meth:`RawEvent.to_json`, where the
    collector turns every accepted hit into bytes, so an accepted form is never refused further down for a NUL
    in a name (issue 11).
    """
    if isinstance(value, str):
        try:  # the client's own bytes back (one U+FFFD per byte that is not UTF-8) ...
            raw = value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # ... or any other lone surrogate
            raw = value.encode("utf-8", "surrogatepass")
        text = raw.decode("utf-8", "replace")
        return text.replace("\x00", "") if "\x00" in text else text
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    return value


def storable_json(doc: dict[str, Any]) -> bytes:
    """``doc`` as JSON bytes that PostgreSQL can store (see :func:`storable`); the common case costs one scan.

    The scan looks for a backslash first: one ``memchr`` (``92 in data``: ``b"\\" in data`` takes the general
    search and costs ten times as much), where the search for ``\\u0000`` costs more still, and most events have
    no escaped character at all.
    """
    try:
        data = orjson.dumps(doc)
    except TypeError:  # lone surrogates: HTTP stacks decode header bytes with 'surrogateescape'
        return orjson.dumps(storable(doc))
    return orjson.dumps(storable(doc)) if 92 in data and b"\\u0000" in data else data  # 92: a backslash


_FIELD_NAMES: dict[type[Any], tuple[str, ...]] = {}
_FIELD_SETS: dict[type[Any], frozenset[str]] = {}


def _field_names(cls: type[Any]) -> tuple[str, ...]:
    """A dataclass's field names in order, computed once per class (events are decoded by the thousand)."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def _field_set(cls: type[Any]) -> frozenset[str]:
    """The same names as a set, for telling unknown fields apart."""
    names = _FIELD_SETS.get(cls)
    if names is None:
        names = _FIELD_SETS[cls] = frozenset(_field_names(cls))
    return names


def _decode(data: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise EventError(f"invalid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise EventError("event is not a JSON object")
    return doc


def _require_str(doc: dict[str, Any], name: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value:
        raise EventError(f"missing or invalid field {name!r}")
    return value


def _optional_dict(doc: dict[str, Any], name: str) -> dict[str, Any] | None:
    value = doc.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise EventError(f"field {name!r} must be an object")
    return value


def event_key(anon_id: str | None, ids: dict[str, str], event_id: str) -> bytes:
    """A raw event's Kafka key (:meth:`RawEvent.key`): the visitor cookie, else the first identifier, else the id."""
    if anon_id:
        return anon_id.encode()
    for kind in IDENTIFIER_TYPES:
        if value := ids.get(kind):
            return f"{kind}:{value}".encode()
    return event_id.encode()


@dataclass(slots=True, kw_only=True)
class RawEvent:
    """One hit as the collector saw it: what the client sent plus the server's view of the request."""

    event_id: str
    type: str
    source: str
    received_at: str
    sent_at: str | None = None
    occurred_at: str | None = None
    anon_id: str | None = None
    ids: dict[str, str] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    form: dict[str, Any] | None = None
    link: dict[str, Any] | None = None
    affiliate: dict[str, Any] | None = None
    v: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    _DICTS: ClassVar[tuple[str, ...]] = ("ids", "context", "properties")
    _OPTIONAL: ClassVar[tuple[str, ...]] = ("form", "link", "affiliate")

    def key(self) -> bytes:
        """The Kafka key: the visitor cookie, else the first identifier, so one visitor stays in order."""
        return event_key(self.anon_id, self.ids, self.event_id)

    def to_dict(self) -> dict[str, Any]:
        """The wire form: None values left out, unknown fields put back.

        The collector encodes every hit it answers, so a plain raw event is written out field by field (half
        the cost of walking the dataclass fields); subclasses take the generic path.
        """
        if type(self) is not RawEvent:
            return self._to_dict_generic()
        doc: dict[str, Any] = dict(self.extra) if self.extra else {}
        doc["event_id"] = self.event_id
        doc["type"] = self.type
        doc["source"] = self.source
        doc["received_at"] = self.received_at
        if self.sent_at is not None:
            doc["sent_at"] = self.sent_at
        if self.occurred_at is not None:
            doc["occurred_at"] = self.occurred_at
        if self.anon_id is not None:
            doc["anon_id"] = self.anon_id
        doc["ids"] = self.ids
        doc["context"] = self.context
        doc["properties"] = self.properties
        if self.form is not None:
            doc["form"] = self.form
        if self.link is not None:
            doc["link"] = self.link
        if self.affiliate is not None:
            doc["affiliate"] = self.affiliate
        doc["v"] = self.v
        return doc

    def _to_dict_generic(self) -> dict[str, Any]:
        doc: dict[str, Any] = dict(self.extra)
        for name in _field_names(type(self)):
            if name == "extra":
                continue
            value = getattr(self, name)
            if value is not None:
                doc[name] = value
        return doc

    def to_json(self) -> bytes:
        """Encode for Kafka, storable (:func:`storable`): text a client sent as bytes that are not UTF-8 is kept
        with U+FFFD in their place, NUL characters are left out."""
        return storable_json(self.to_dict())

    @classmethod
    def _kwargs(cls, doc: dict[str, Any]) -> dict[str, Any]:
        """Validate a decoded object and split it into known fields and ``extra``."""
        kwargs: dict[str, Any] = {
            "event_id": _require_str(doc, "event_id"),
            "type": _require_str(doc, "type"),
            "source": _require_str(doc, "source"),
            "received_at": _require_str(doc, "received_at"),
        }
        if kwargs["type"] not in EVENT_TYPES:
            raise EventError(f"unknown event type {kwargs['type']!r}")
        if kwargs["source"] not in SOURCES:
            raise EventError(f"unknown source {kwargs['source']!r}")
        for name in ("sent_at", "occurred_at", "anon_id"):
            value = doc.get(name)
            if value is not None and not isinstance(value, str):
                raise EventError(f"field {name!r} must be a string")
            kwargs[name] = value
        for name in cls._DICTS:
            value = doc.get(name, {})
            if not isinstance(value, dict):
                raise EventError(f"field {name!r} must be an object")
            kwargs[name] = value
        if not all(isinstance(v, str) for v in kwargs["ids"].values()):
            raise EventError("identifiers in 'ids' must be strings")
        for name in cls._OPTIONAL:
            kwargs[name] = _optional_dict(doc, name)
        v = doc.get("v", SCHEMA_VERSION)
        if not isinstance(v, int):
            raise EventError("field 'v' must be an integer")
        kwargs["v"] = v
        known = _field_set(cls)
        kwargs["extra"] = {k: val for k, val in doc.items() if k not in known}
        return kwargs

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Self:
        """Validate and build from a decoded object."""
        return cls(**cls._kwargs(doc))

    @classmethod
    def from_json(cls, data: bytes) -> Self:
        """Decode from Kafka; raises :class:`EventError` with a reason on anything invalid."""
        return cls.from_dict(_decode(data))


class EncodedEvent:
    """A raw event already in its wire form: what the collector's busiest routes build (:func:`encode_raw`).

    A Segment batch or a snippet beacon of 20 events used to build 20 :class:`RawEvent` objects only to turn each
    into a dict and then into JSON: about a third of what the collector spent per event. This keeps what the
    publisher and the metrics read (id, type, source, key, JSON) and nothing else; :meth:`decoded` gives the
    :class:`RawEvent` back where a reader wants one (tests, tools). ``wire_key`` and ``wire_value`` are what
    :meth:`key` and :meth:`to_json` give, read directly where a method call per event costs (the publisher).
    """

    __slots__ = ("event_id", "source", "type", "wire_key", "wire_value")

    def __init__(self, event_id: str, type_: str, source: str, key: bytes, value: bytes) -> None:
        self.event_id, self.type, self.source, self.wire_key, self.wire_value = (
            event_id,
            type_,
            source,
            key,
            value,
        )

    def key(self) -> bytes:
        """The Kafka key, as :meth:`RawEvent.key` gives it."""
        return self.wire_key

    def to_json(self) -> bytes:
        """The wire form, as :meth:`RawEvent.to_json` gives it."""
        return self.wire_value

    def decoded(self) -> RawEvent:
        """The event as a :class:`RawEvent` (decoded from its JSON, as a consumer of the raw topic reads it)."""
        return RawEvent.from_json(self.wire_value)

    def __repr__(self) -> str:
        return f"EncodedEvent({self.event_id!r}, {self.type!r}, {self.source!r})"


def encode_raw(
    event_id: str,
    type_: str,
    source: str,
    received_at: str,
    sent_at: str | None,
    occurred_at: str | None,
    anon_id: str | None,
    ids: dict[str, str],
    context: dict[str, Any] | orjson.Fragment,
    properties: dict[str, Any],
    form: dict[str, Any] | None = None,
) -> EncodedEvent:
    """The raw event these fields make, encoded straight away: the same key and the same bytes as
    ``RawEvent(...)`` with these fields and its :meth:`~RawEvent.key` and :meth:`~RawEvent.to_json` (a test holds
    the two to it), at a fraction of the cost.

    Positional, in the wire order, because it runs for every captured event. ``context`` may be an
    ``orjson.Fragment`` of JSON already made storable (:func:`storable_fragment`): the messages of one Segment
    batch mostly share one, encoded once for all of them.
    """
    if sent_at is not None and occurred_at is not None and anon_id and form is None:  # one dict display: most
        doc: dict[str, Any] = {  # events of a Segment batch or a beacon have every one of these, and no form
            "event_id": event_id,
            "type": type_,
            "source": source,
            "received_at": received_at,
            "sent_at": sent_at,
            "occurred_at": occurred_at,
            "anon_id": anon_id,
            "ids": ids,
            "context": context,
            "properties": properties,
            "v": SCHEMA_VERSION,
        }
        return EncodedEvent(event_id, type_, source, anon_id.encode(), storable_json(doc))
    doc = {"event_id": event_id, "type": type_, "source": source, "received_at": received_at}
    if sent_at is not None:
        doc["sent_at"] = sent_at
    if occurred_at is not None:
        doc["occurred_at"] = occurred_at
    if anon_id is not None:
        doc["anon_id"] = anon_id
    doc["ids"] = ids
    doc["context"] = context
    doc["properties"] = properties
    if form is not None:
        doc["form"] = form
    doc["v"] = SCHEMA_VERSION
    key = anon_id.encode() if anon_id else event_key(anon_id, ids, event_id)
    return EncodedEvent(event_id, type_, source, key, storable_json(doc))


def storable_fragment(value: dict[str, Any]) -> orjson.Fragment:
    """``value`` encoded once (made storable, :func:`storable`) for several :func:`encode_raw` calls to embed."""
    return orjson.Fragment(storable_json(value))


@dataclass(slots=True, kw_only=True)
class EnrichedEvent(RawEvent):
    """A raw event after the enricher: who it belongs to and what the request tells about it."""

    person_id: str
    ua: dict[str, Any] | None = None
    bot: dict[str, Any] | None = None
    referrer_class: str | None = None
    geo: dict[str, Any] | None = None
    campaign: dict[str, Any] | None = None  # UTM, click id, email campaign, affiliate (optional, added later)
    identity: dict[str, Any] | None = None
    """The graph's verdict on the event's identifiers, by type: ``{"attached": [...], "refused": [...]}``.
    ``attached``: the types whose value the event's person holds in the identity graph once the event is
    resolved; ``refused``: the event's other usable identifiers (held by another person the graph would not
    merge, over a per-type limit, erased, or sent by a bot). Consumers record only the attached ones on the
    person (architecture.md §4); absent on events enriched before it existed."""

    @classmethod
    def _kwargs(cls, doc: dict[str, Any]) -> dict[str, Any]:
        kwargs = super(EnrichedEvent, cls)._kwargs(doc)  # explicit: slots dataclasses break bare super()
        kwargs["person_id"] = _require_str(doc, "person_id")
        for name in ("ua", "bot", "geo", "campaign", "identity"):
            kwargs[name] = _optional_dict(doc, name)
        ref = doc.get("referrer_class")
        if ref is not None and not isinstance(ref, str):
            raise EventError("field 'referrer_class' must be a string")
        kwargs["referrer_class"] = ref
        return kwargs

    @classmethod
    def from_raw(cls, raw: RawEvent | EncodedEvent, person_id: str, **enrichment: Any) -> EnrichedEvent:
        """The raw event (or one encoded already, decoded first) with the enricher's findings added."""
        if isinstance(raw, EncodedEvent):
            raw = raw.decoded()
        base = {name: getattr(raw, name) for name in _field_names(type(raw))}
        return cls(**base, person_id=person_id, **enrichment)


@dataclass(slots=True, kw_only=True)
class IdentityChange:
    """A change to who is who: merge (``merged`` persons now are ``person_id``), link or unlink (``identifier``
    now belongs to ``person_id``, or no longer does), erase, or conflict.

    A ``conflict`` says that an event (``event_id``) carried identifiers of ``person_id`` and of ``other`` that the
    graph would not merge automatically (both hold an identifier of the type in ``identifier``, architecture.md
    §4); it is sent for every such event, so a consumer can count them. A ``merge`` with an ``event_id`` is the
    one a rep asked for (:func:`merge_request`): the graph merged the persons regardless of the conflict rule.
    No change ever carries an identifier's value (identity.changes.v1 is kept forever)."""

    change_id: str
    kind: str
    person_id: str
    at: str
    merged: list[str] = field(default_factory=list)
    identifier: dict[str, str] | None = None
    other: str | None = None
    event_id: str | None = None

    KINDS: ClassVar[frozenset[str]] = frozenset({"merge", "link", "unlink", "erase", "conflict"})

    def key(self) -> bytes:
        """Keyed by the surviving person so changes to one person stay in order."""
        return self.person_id.encode()

    def to_json(self) -> bytes:
        """Encode for Kafka."""
        return orjson.dumps({k: v for k, v in dataclasses.asdict(self).items() if v is not None})

    @classmethod
    def from_json(cls, data: bytes) -> IdentityChange:
        """Decode from Kafka; raises :class:`EventError` on anything invalid."""
        doc = _decode(data)
        kind = _require_str(doc, "kind")
        if kind not in cls.KINDS:
            raise EventError(f"unknown identity change {kind!r}")
        merged = doc.get("merged", [])
        if not isinstance(merged, list) or not all(isinstance(m, str) for m in merged):
            raise EventError("field 'merged' must be a list of person ids")
        optional: dict[str, str | None] = {}
        for name in ("other", "event_id"):
            value = doc.get(name)
            if value is not None and not isinstance(value, str):
                raise EventError(f"field {name!r} must be a string")
            optional[name] = value
        if kind == "conflict" and not optional["other"]:
            raise EventError("a conflict names the 'other' person")
        return cls(
            change_id=_require_str(doc, "change_id"),
            kind=kind,
            person_id=_require_str(doc, "person_id"),
            at=_require_str(doc, "at"),
            merged=merged,
            identifier=_optional_dict(doc, "identifier"),
            **optional,
        )


def merge_request(survivor: str, merged: list[str], request_id: str) -> RawEvent:
    """The raw event by which crm-core asks the identity graph to merge ``merged`` into ``survivor`` (a rep
    confirmed they are one person): type ``merge``, source ``api``, the survivor as ``crm_contact_id`` (so the
    event is keyed, and ordered, with crm-core's other events about that person) and the others in
    ``properties.merge``. The graph merges them whatever the conflict rule says and answers with the usual
    ``merge`` change, whose ``event_id`` is ``request_id``. Only crm-core's events (source ``api``) are obeyed."""
    now = utc_now_iso()
    return RawEvent(
        event_id=request_id,
        type="merge",
        source="api",
        received_at=now,
        sent_at=now,
        occurred_at=now,
        ids={"crm_contact_id": survivor},
        properties={"merge": list(merged)},
    )


def merge_request_of(raw: RawEvent) -> tuple[str, list[str]] | None:
    """The survivor and the persons to merge into it, when ``raw`` is crm-core's :func:`merge_request`."""
    if raw.type != "merge" or raw.source != "api":
        return None
    survivor, merged = raw.ids.get("crm_contact_id"), raw.properties.get("merge")
    if not survivor or not isinstance(merged, list):
        return None
    return survivor, [m for m in merged if isinstance(m, str) and m]


def erase_request(person: str, request_id: str) -> RawEvent:
    """The raw event by which crm-core asks the identity graph to erase ``person`` (an admin's request, issue 14):
    type ``erase``, source ``api``, the person as ``crm_contact_id`` (keyed and ordered with crm-core's other
    events about that person). The graph does what ``leadline erase --person`` does and answers with the usual
    ``erase`` change; the request itself is not enriched. Only crm-core's events (source ``api``) are obeyed."""
    now = utc_now_iso()
    return RawEvent(
        event_id=request_id,
        type="erase",
        source="api",
        received_at=now,
        sent_at=now,
        occurred_at=now,
        ids={"crm_contact_id": person},
    )


def erase_request_of(raw: RawEvent) -> str | None:
    """The person to erase, when ``raw`` is crm-core's :func:`erase_request`."""
    if raw.type != "erase" or raw.source != "api":
        return None
    person = raw.ids.get("crm_contact_id")
    return person if isinstance(person, str) and person else None
