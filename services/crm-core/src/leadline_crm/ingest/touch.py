"""One enriched event as ingestion reads it (:class:`Touch`) and what a batch's events tell about one person
(:class:`PersonDelta`).

Why a module of its own: the steps that run inside ingestion's transaction (automation, marketing's orders,
consent, support forms) read these types, and ingestion's writer (touches.py) calls those steps; with the types
beside the writer, every step would import its own caller.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import orjson

from leadline_crm import lifecycle
from leadline_crm.stages import Rule, event_time
from leadline_shared.events import EVENT_TYPES, SOURCES, EnrichedEvent, EventError, storable
from leadline_shared.identifiers import canonical_email

TOUCHPOINT_COLUMNS = [
    "event_id",
    "person_id",
    "anon_id",
    "type",
    "source",
    "occurred_at",
    "received_at",
    "url",
    "event",
    "automated",
]


def _is_uuid(value: str) -> bool:
    """The canonical 8-4-4-4-12 hex form (checked cheaply: this runs for every event)."""
    if len(value) != 36 or not value[8] == value[13] == value[18] == value[23] == "-":
        return False
    digits = value.replace("-", "")
    if not digits.isalnum():
        return False
    try:
        bytes.fromhex(digits)
    except ValueError:
        return False
    return True


MAX_KEY = 200  # event ids and anon ids are index keys: longer ones would fail the whole batch


def _ts(value: Any, fallback: datetime) -> datetime:
    """A client timestamp, or the fallback when it is missing, malformed or without a time zone."""
    if not value or not isinstance(value, str):
        return fallback
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return fallback
    return parsed if parsed.tzinfo else fallback


@dataclass(slots=True)
class Touch:
    """One enriched event as ingestion needs it: the touchpoint's columns, the original JSON text, the object.

    Parsed straight from the Kafka bytes, which are stored as they came (no re-encoding): the envelope's
    forward-compatibility promise (unknown fields kept) holds all the way into PostgreSQL.
    """

    event_id: str
    person_id: str
    anon_id: str | None
    type: str
    source: str
    occurred: datetime
    received: datetime
    url: str | None
    json: str
    doc: dict[str, Any]
    key: bytes | None = None  # the Kafka key it came with (a dead letter keeps it)
    automated: bool = False  # a bot, link scanner or image proxy (lifecycle.automated): never scores

    @classmethod
    def parse(cls, raw: bytes) -> Touch:
        """Validate what ingestion relies on; :class:`EventError` (the event is dead-lettered) otherwise.

        An event with NUL characters (written before the collector made every event storable) is stored without
        them, by the envelope's own rule (``events.storable``), rather than refused.
        """
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise EventError(f"invalid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise EventError("event is not a JSON object")
        if b"\\u0000" in raw:
            doc = storable(doc)
            raw = orjson.dumps(doc)
        if _drop_refused(doc):  # a value the graph did not give this person is not kept on them (§4)
            raw = orjson.dumps(doc)
        event_id, person_id, kind, source = (
            doc.get("event_id"),
            doc.get("person_id"),
            doc.get("type"),
            doc.get("source"),
        )
        if not isinstance(event_id, str) or not event_id or len(event_id) > MAX_KEY:
            raise EventError("missing or invalid field 'event_id'")
        if not isinstance(person_id, str) or not _is_uuid(person_id):
            raise EventError("missing or invalid field 'person_id'")
        if kind not in EVENT_TYPES or source not in SOURCES:
            raise EventError("unknown event type or source")
        received = _ts(doc.get("received_at"), _NO_TIME)
        if received is _NO_TIME:
            raise EventError("missing or invalid field 'received_at'")
        anon_id = doc.get("anon_id")
        if anon_id is not None and (not isinstance(anon_id, str) or len(anon_id) > MAX_KEY):
            raise EventError("invalid field 'anon_id'")
        context = doc.get("context")
        url = context.get("url") if isinstance(context, dict) else None
        return cls(
            event_id,
            person_id,
            anon_id,
            kind,
            source,
            _ts(doc.get("occurred_at"), received),
            received,
            url if isinstance(url, str) else None,
            raw.decode(),
            doc,
            automated=lifecycle.automated(kind, source, doc.get("bot")),
        )

    @classmethod
    def of(cls, event: EnrichedEvent) -> Touch:
        """From an event object (tests, tools)."""
        return cls.parse(event.to_json())

    def row(self) -> tuple[Any, ...]:
        """The columns, in TOUCHPOINT_COLUMNS order."""
        return (
            self.event_id,
            self.person_id,
            self.anon_id,
            self.type,
            self.source,
            self.occurred,
            self.received,
            self.url,
            self.json,
            self.automated,
        )


_NO_TIME = datetime.min.replace(tzinfo=UTC)

#: The identifiers whose refused values ingestion drops from the stored event (anon ids and tokens are no one's
#: address; the graph refuses them only over a limit).
REFUSED_DROPPED = ("email", "phone", "user_id")


def _drop_refused(doc: dict[str, Any]) -> bool:
    """Drop from the event the values of the identifiers the identity graph refused it (erased ones, another
    person's, over a limit, a bot's): in ``ids``, the form's fields and an identify call's traits. Whether the
    event was changed.

    Why: an erased person's email typed into a new form is refused by its tombstone, and the stored touchpoint
    must not hold it either, or the erasure is undone in the history (issue 14: 'no personal data returns')."""
    verdict = doc.get("identity")
    refused = verdict.get("refused") if isinstance(verdict, dict) else None
    kinds = [k for k in REFUSED_DROPPED if isinstance(refused, list) and k in refused]
    if not kinds:
        return False
    properties = _dict(doc.get("properties"))
    holders = (_dict(doc.get("ids")), _dict(_dict(doc.get("form")).get("fields")), properties,
               _dict(properties.get("traits")))  # fmt: skip
    for kind in kinds:
        for holder in holders:
            holder.pop(kind, None)
        if kind == "user_id":
            properties.pop("userId", None)
    return True


def rows_for(events: Iterable[EnrichedEvent]) -> list[tuple[Any, ...]]:
    """One touchpoint row per event, columns in TOUCHPOINT_COLUMNS order (the event as JSON text)."""
    return [Touch.of(ev).row() for ev in events]


def _text(value: Any, limit: int = 200) -> str | None:
    """A form value fit for a person column: a non-empty string, trimmed and capped."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value[:limit] or None


def segment_traits(properties: dict[str, Any]) -> dict[str, Any]:
    """An identify call's traits under the names crm-core reads (the form fields' names).

    Segment's reserved traits (https://segment.com/docs/connections/spec/identify/#traits) are camelCase and
    partly nested: ``firstName``, ``lastName``, ``company`` {name, industry, employee_count} (or a plain name),
    ``address`` {country, state, city, street, postalCode}, ``title``, ``gender``; snake_case spellings are read
    too. A trait the call sends twice keeps its
    reserved spelling.
    """
    traits = properties.get("traits")
    traits = traits if isinstance(traits, dict) else properties
    company, address = traits.get("company"), _dict(traits.get("address"))
    size = _dict(company).get("employee_count") or _dict(company).get("employees")
    reserved = {
        "first_name": traits.get("firstName"),
        "last_name": traits.get("lastName"),
        "company": company.get("name") if isinstance(company, dict) else None,
        "industry": _dict(company).get("industry"),
        "company_size": str(size) if isinstance(size, int | str) and not isinstance(size, bool) else None,
        "country": address.get("country"),
        "region": address.get("state") or address.get("region"),
        "street": address.get("street"),
        "city": address.get("city"),
        "postal_code": address.get("postalCode") or address.get("postal_code"),
    }
    return {**traits, **{k: v for k, v in reserved.items() if isinstance(v, str) and v.strip()}}


def _split_name(name: str | None) -> tuple[str | None, str | None]:
    if not name:
        return None, None
    first, _, last = name.partition(" ")
    return first or None, last.strip() or None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass(slots=True)
class PersonDelta:
    """What one batch's new events tell about one person (applied by UPSERT_PERSON_DELTAS)."""

    person_id: str
    emails: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    user_ids: set[str] = field(default_factory=set)
    names: dict[str, str] = field(default_factory=dict)
    identified: bool = False
    clicked: bool = False
    points: float = 0.0
    days: set[date] = field(default_factory=set)
    cause: str = ""
    # the cause's own time (stages.event_time): when a move it makes happened
    cause_at: datetime | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None

    def add(self, t: Touch, now: datetime, rules: dict[str, list[Rule]], half_life: float) -> None:
        """Fold one new event in (page views, most of the stream, take the short path).

        A bot's, link scanner's or image proxy's event is only seen: it stays on the timeline, marked, but adds
        no points, visit or click, tells nothing about who the person is and causes no stage move.
        """
        if self.first_seen is None or t.occurred < self.first_seen:
            self.first_seen = t.occurred
        if self.last_seen is None or t.occurred > self.last_seen:
            self.last_seen = t.occurred
        if t.automated:
            return
        at = event_time(t.occurred, t.received, now)
        if self.cause_at is None or at >= self.cause_at:  # the latest event that counts
            self.cause, self.cause_at = t.event_id, at
        doc = t.doc
        if doc.get("ids") or doc.get("form") or doc.get("geo") or t.type == "identify":
            self._identity(t)
        if t.type in lifecycle.CLICK_TYPES:
            self.clicked = True
        elif t.type == "page_view":
            self.days.add(t.occurred.astimezone(UTC).date())
        for rule in rules.get(t.type, ()):
            if rule.matches(t.url):
                self.points += lifecycle.decayed(rule.points, t.occurred, now, half_life)

    def _identity(self, t: Touch) -> None:
        doc = t.doc
        ids = {k: v for k, v in _dict(doc.get("ids")).items() if isinstance(v, str) and v}
        if t.source == "api":
            # crm-core's own announcements (persons.rep_identify): their facts are in the person's row already,
            # and folding them in again would undo a rep's later correction (a typo'd email coming back)
            self.identified = self.identified or bool(ids.get("crm_contact_id"))
            return
        verdict = doc.get("identity")
        if isinstance(verdict, dict):  # only what the identity graph gave this person (architecture.md §4)
            attached = verdict.get("attached")
            ids = {k: v for k, v in ids.items() if isinstance(attached, list) and k in attached}
        fields = _dict(_dict(doc.get("form")).get("fields"))
        if t.type == "identify":
            fields = {**segment_traits(_dict(doc.get("properties"))), **fields}
        unresolved = not isinstance(verdict, dict)  # enriched before the graph said: the fields stand in
        email = ids.get("email") or (_text(fields.get("email")) if unresolved else None)
        phone = ids.get("phone") or (_text(fields.get("phone")) if unresolved else None)
        if email:  # a form field stands in only for events enriched before the graph said: make it canonical
            self.emails.add((canonical_email(email) or email.strip().lower())[:320])
        if phone:
            self.phones.add(phone.strip()[:40])
        if user_id := ids.get("user_id"):
            self.user_ids.add(user_id[:200])
        if email or phone or ids.get("user_id") or ids.get("crm_contact_id"):
            self.identified = True
        geo = _dict(doc.get("geo"))
        first, last = _split_name(_text(fields.get("name")))
        for column, value in (
            ("first_name", _text(fields.get("first_name")) or first),
            ("last_name", _text(fields.get("last_name")) or last),
            ("company", _text(fields.get("company"))),
            ("industry", _text(fields.get("industry"))),
            ("company_size", _text(fields.get("company_size"))),
            ("country", _text(geo.get("country")) or _text(fields.get("country"))),
            ("region", _text(geo.get("region")) or _text(fields.get("region"))),
            ("title", _text(fields.get("title"))),
            ("street", _text(fields.get("street"))),
            ("city", _text(fields.get("city"))),
            ("postal_code", _text(fields.get("postal_code"), 20)),
            ("gender", _text(fields.get("gender"), 50)),
            ("source", t.source if self.identified else None),
        ):
            if value and column not in self.names:
                self.names[column] = value

    def doc(self) -> dict[str, Any]:
        """The JSON object the SQL reads with jsonb_to_recordset."""
        return {
            "person_id": self.person_id,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "emails": sorted(self.emails),
            "phones": sorted(self.phones),
            "user_ids": sorted(self.user_ids),
            **self.names,
            "identified": self.identified,
            "clicked": self.clicked,
            "points": self.points,
            "days": sorted(self.days),
        }
