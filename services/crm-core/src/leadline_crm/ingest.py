"""Ingestion: enriched events from Kafka into PostgreSQL, idempotent by ``event_id``.

A batch is written in one PostgreSQL transaction with array-parameter upserts; Kafka offsets are committed only
after that transaction commits, so a crash replays the batch and ``ON CONFLICT DO NOTHING`` absorbs it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from prometheus_client import CollectorRegistry, Counter

from leadline_crm import identity, lifecycle, queries
from leadline_crm.stages import Rule, apply_moves, load_scoring
from leadline_shared import kafka
from leadline_shared.events import EnrichedEvent, EventError, IdentityChange

log = logging.getLogger(__name__)


def _ts(value: str | None, fallback: datetime) -> datetime:
    """A client timestamp, or the fallback when it is missing or malformed."""
    if not value:
        return fallback
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return fallback
    return parsed if parsed.tzinfo else fallback


def rows_for(events: Iterable[EnrichedEvent]) -> list[tuple[Any, ...]]:
    """One touchpoint row per event, columns in INSERT_TOUCHPOINTS order (the event as JSON text)."""
    rows = []
    for ev in events:
        received = datetime.fromisoformat(ev.received_at)
        occurred = _ts(ev.occurred_at, received)
        rows.append(
            (
                ev.event_id,
                ev.person_id,
                ev.anon_id,
                ev.type,
                ev.source,
                occurred,
                received,
                ev.context.get("url"),
                ev.to_json().decode(),
            )
        )
    return rows


def _text(value: Any, limit: int = 200) -> str | None:
    """A form value fit for a person column: a non-empty string, trimmed and capped."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value[:limit] or None


def _split_name(name: str | None) -> tuple[str | None, str | None]:
    if not name:
        return None, None
    first, _, last = name.partition(" ")
    return first or None, last.strip() or None


@dataclass
class PersonDelta:
    """What one batch's new events tell about one person (applied by APPLY_PERSON_DELTAS)."""

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

    def add(
        self, ev: EnrichedEvent, occurred: datetime, now: datetime, rules: list[Rule], half_life: float
    ) -> None:
        """Fold one new event in."""
        self.cause = ev.event_id
        fields: dict[str, Any] = dict(ev.form.get("fields") or {}) if ev.form else {}
        if ev.type == "identify":
            traits = ev.properties.get("traits")
            fields = {**(traits if isinstance(traits, dict) else ev.properties), **fields}
        email = ev.ids.get("email") or _text(fields.get("email"))
        phone = ev.ids.get("phone") or _text(fields.get("phone"))
        if email:
            self.emails.add(email.strip().lower()[:320])
        if phone:
            self.phones.add(phone.strip()[:40])
        if user_id := ev.ids.get("user_id"):
            self.user_ids.add(user_id[:200])
        if email or phone or ev.ids.get("user_id") or ev.ids.get("crm_contact_id"):
            self.identified = True
        first, last = _split_name(_text(fields.get("name")))
        for column, value in (
            ("first_name", _text(fields.get("first_name")) or first),
            ("last_name", _text(fields.get("last_name")) or last),
            ("company", _text(fields.get("company"))),
            ("industry", _text(fields.get("industry"))),
            ("company_size", _text(fields.get("company_size"))),
            ("country", _text((ev.geo or {}).get("country")) or _text(fields.get("country"))),
            ("region", _text((ev.geo or {}).get("region"))),
            ("source", ev.source if self.identified else None),
        ):
            if value and column not in self.names:
                self.names[column] = value
        if ev.type in lifecycle.CLICK_TYPES:
            self.clicked = True
        if ev.type == "page_view":
            self.days.add(occurred.astimezone(UTC).date())
        earned = sum(r.points for r in rules if r.matches(ev))
        if earned:
            self.points += lifecycle.decayed(earned, occurred, now, half_life)

    def doc(self) -> dict[str, Any]:
        """The JSON object the SQL reads with jsonb_to_recordset."""
        return {
            "person_id": self.person_id,
            "emails": sorted(self.emails),
            "phones": sorted(self.phones),
            "user_ids": sorted(self.user_ids),
            **self.names,
            "identified": self.identified,
            "clicked": self.clicked,
            "points": self.points,
            "days": [d.isoformat() for d in sorted(self.days)],
            "cause": self.cause,
        }


async def write_batch(
    conn: asyncpg.Connection, events: list[EnrichedEvent], now: datetime | None = None
) -> int:
    """Write events in one transaction; returns how many were new (redeliveries count zero).

    Only new touchpoints (those the insert did not skip as duplicates) change the persons, so a replayed batch
    never adds score, visits or stage moves twice.
    """
    if not events:
        return 0
    now = now or datetime.now(UTC)
    async with conn.transaction():
        merged = dict(await conn.fetch(queries.MERGED_IDS, list({ev.person_id for ev in events})))
        for ev in events:
            if (survivor := merged.get(uuid.UUID(ev.person_id))) is not None:
                ev.person_id = str(survivor)
        rows = rows_for(events)
        seen: dict[str, tuple[datetime, datetime]] = {}
        for row in rows:
            person, occurred = row[1], row[5]
            first, last = seen.get(person, (occurred, occurred))
            seen[person] = (min(first, occurred), max(last, occurred))
        await conn.execute(
            queries.UPSERT_PERSONS,
            list(seen),
            [f for f, _ in seen.values()],
            [last for _, last in seen.values()],
        )
        columns = list(zip(*rows, strict=True))
        new_ids = {r[0] for r in await conn.fetch(queries.INSERT_TOUCHPOINTS_RETURNING, *map(list, columns))}
        if not new_ids:
            return 0
        scoring, rules = await load_scoring(conn)
        deltas: dict[str, PersonDelta] = {}
        fresh = 0
        for ev, row in zip(events, rows, strict=True):
            if ev.event_id in new_ids:
                fresh += 1
                delta = deltas.setdefault(ev.person_id, PersonDelta(ev.person_id))
                delta.add(ev, row[5], now, rules, scoring.half_life_days)
                new_ids.discard(ev.event_id)  # the same id twice in one batch counts once
        updated = await conn.fetch(
            queries.APPLY_PERSON_DELTAS,
            orjson.dumps([d.doc() for d in deltas.values()]).decode(),
            now,
            scoring.half_life_days,
        )
        await apply_moves(conn, updated, scoring, now, "automatic")
    return fresh


@dataclass
class Ingestor:
    """The consume → write → commit loop."""

    bootstrap: str
    topics: kafka.Topics
    group_id: str
    pool: asyncpg.Pool
    registry: CollectorRegistry
    batch_max: int = 1000
    consumer: AIOKafkaConsumer | None = None

    def __post_init__(self) -> None:
        self.written = Counter(
            "leadline_crm_touchpoints_written", "New touchpoints stored", registry=self.registry
        )
        self.changes = Counter(
            "leadline_crm_identity_changes_applied", "Identity changes applied", registry=self.registry
        )
        self.skipped = Counter(
            "leadline_crm_events_invalid", "Enriched events that failed validation", registry=self.registry
        )

    async def start(self) -> None:
        """Join the consumer group."""
        self.consumer = kafka.consumer(
            self.bootstrap,
            [self.topics.enriched, self.topics.identity_changes],
            self.group_id,
            max_poll_records=self.batch_max,
        )
        await self.consumer.start()

    async def stop(self) -> None:
        """Leave the group."""
        if self.consumer is not None:
            await self.consumer.stop()

    async def run(self) -> None:
        """Ingest until cancelled."""
        assert self.consumer is not None
        while True:
            batch = await self.consumer.getmany(timeout_ms=500, max_records=self.batch_max)
            if not batch:
                continue
            events = [
                ev
                for tp, records in batch.items()
                if tp.topic == self.topics.enriched
                for ev in self._decode(records)
            ]
            changes = [
                ch
                for tp, records in batch.items()
                if tp.topic == self.topics.identity_changes
                for ch in self._changes(records)
            ]
            async with self.pool.acquire() as conn:
                self.written.inc(await write_batch(conn, events))
                if changes:
                    self.changes.inc(await identity.apply_changes(conn, changes))
            await self.consumer.commit({tp: records[-1].offset + 1 for tp, records in batch.items()})

    def _changes(self, records: list[ConsumerRecord]) -> Iterable[IdentityChange]:
        for record in records:
            try:
                yield IdentityChange.from_json(record.value)
            except EventError as exc:
                self.skipped.inc()
                log.warning(
                    "invalid identity change skipped",
                    extra={"reason": str(exc), "partition": record.partition, "offset": record.offset},
                )

    def _decode(self, records: list[ConsumerRecord]) -> Iterable[EnrichedEvent]:
        for record in records:
            try:
                yield EnrichedEvent.from_json(record.value)
            except EventError as exc:
                self.skipped.inc()
                log.warning(
                    "invalid enriched event skipped",
                    extra={"reason": str(exc), "partition": record.partition, "offset": record.offset},
                )
