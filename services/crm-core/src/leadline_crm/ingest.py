"""Ingestion: enriched events from Kafka into PostgreSQL, idempotent by ``event_id``.

A batch is written in one PostgreSQL transaction with array-parameter upserts; Kafka offsets are committed only
after that transaction commits, so a crash replays the batch and ``ON CONFLICT DO NOTHING`` absorbs it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from prometheus_client import CollectorRegistry, Counter

from leadline_crm import queries
from leadline_shared import kafka
from leadline_shared.events import EnrichedEvent, EventError

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


async def write_batch(conn: asyncpg.Connection, events: list[EnrichedEvent]) -> int:
    """Write events in one transaction; returns how many were new (redeliveries count zero)."""
    rows = rows_for(events)
    if not rows:
        return 0
    seen: dict[str, tuple[datetime, datetime]] = {}
    for row in rows:
        person, occurred = row[1], row[5]
        first, last = seen.get(person, (occurred, occurred))
        seen[person] = (min(first, occurred), max(last, occurred))
    columns = list(zip(*rows, strict=True))
    async with conn.transaction():
        await conn.execute(
            queries.UPSERT_PERSONS,
            list(seen),
            [f for f, _ in seen.values()],
            [last for _, last in seen.values()],
        )
        status: str = await conn.execute(queries.INSERT_TOUCHPOINTS, *map(list, columns))
    return int(status.rsplit(" ", 1)[-1])


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
        self.skipped = Counter(
            "leadline_crm_events_invalid", "Enriched events that failed validation", registry=self.registry
        )

    async def start(self) -> None:
        """Join the consumer group."""
        self.consumer = kafka.consumer(
            self.bootstrap, [self.topics.enriched], self.group_id, max_poll_records=self.batch_max
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
            events = [ev for records in batch.values() for ev in self._decode(records)]
            async with self.pool.acquire() as conn:
                self.written.inc(await write_batch(conn, events))
            await self.consumer.commit({tp: records[-1].offset + 1 for tp, records in batch.items()})

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
