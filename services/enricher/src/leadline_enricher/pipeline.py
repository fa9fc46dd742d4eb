"""Consume raw events, resolve identity, produce enriched events: exactly once per Kafka transaction.

Each batch is one Kafka transaction: the enriched events, the identity changes, any dead letters and the
consumed offsets commit together, so a crash anywhere in between replays the batch and read_committed readers
never see a half. The identity graph commits to PostgreSQL just before; a replayed batch finds its persons
already there and resolves to the same ones. Identity changes go through an outbox table: a change whose Kafka
transaction was lost is published again at start-up.

Partition hand-over: a rebalance waits for the batch in flight to commit (the revoke callback takes the same
lock as the batch), so the next owner of a partition starts from committed offsets and nothing is processed
twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)

from leadline_enricher import queries
from leadline_enricher.enrich import EventEnricher
from leadline_enricher.identifiers import IdentifierRules, identifiers_of
from leadline_enricher.identity import BatchResult, IdentityGraph, Work
from leadline_enricher.metrics import EnricherMetrics
from leadline_enricher.publish import BatchPublisher, Message
from leadline_shared import kafka
from leadline_shared.events import EnrichedEvent, EventError, IdentityChange, RawEvent, utc_now_iso

log = logging.getLogger(__name__)


@dataclass
class Enricher:
    """The consume → resolve → produce loop of one replica."""

    bootstrap: str
    topics: kafka.Topics
    group_id: str
    transactional_id: str
    pool: asyncpg.Pool
    metrics: EnricherMetrics
    batch_max: int = 2000
    rules: IdentifierRules = field(default_factory=IdentifierRules)
    enricher: EventEnricher = field(default_factory=EventEnricher)
    graph: IdentityGraph | None = None
    consumer: AIOKafkaConsumer | None = None
    producer: AIOKafkaProducer | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def start(self) -> None:
        """Connect the transactional producer, publish leftover identity changes, join the group."""
        if self.graph is None:
            self.graph = IdentityGraph(self.rules)
        self.producer = kafka.producer(self.bootstrap, transactional_id=self.transactional_id)
        await self.producer.start()
        self._publisher = BatchPublisher(self.producer)
        await self.publish_leftover_changes()
        self.consumer = kafka.consumer(
            self.bootstrap,
            [],
            self.group_id,
            max_poll_records=self.batch_max,
            fetch_max_bytes=16 * 1024 * 1024,
        )
        await self.consumer.start()
        self.consumer.subscribe([self.topics.raw], listener=_WaitForBatch(self._lock))

    async def stop(self) -> None:
        """Leave the group and close the producer (an open transaction is aborted by the broker)."""
        if self.consumer is not None:
            await self.consumer.stop()
        if self.producer is not None:
            await self.producer.stop()

    async def run(self) -> None:
        """Process batches until cancelled."""
        assert self.consumer is not None
        while True:
            batch = await self.consumer.getmany(timeout_ms=500, max_records=self.batch_max)
            if batch:
                async with self._lock:
                    await self.process(batch)

    async def process(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """Enrich one batch: identity in PostgreSQL, then everything else in one Kafka transaction."""
        assert self.producer is not None
        assert self.graph is not None
        started = time.perf_counter()
        out: list[Message] = []
        events: list[tuple[RawEvent, dict[str, Any]]] = []
        work: list[Work] = []
        for records in batch.values():
            for record in records:
                decoded = self._decode(record)
                if isinstance(decoded, _Decoded):
                    events.append((decoded.raw, decoded.findings))
                    work.append(decoded.work)
                else:
                    out.append(decoded)
        result = await self._resolve(work)
        for (raw, findings), person_id in zip(events, result.persons, strict=True):
            enriched = EnrichedEvent.from_raw(raw, person_id, **findings)
            out.append((self.topics.enriched, person_id.encode(), enriched.to_json(), None))
        for change in result.changes:
            out.append((self.topics.identity_changes, change.key(), change.to_json(), None))
        async with self.producer.transaction():
            await self._publisher.publish(out)
            offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
            await self.producer.send_offsets_to_transaction(offsets, self.group_id)
        if result.changes:
            await self.pool.execute(queries.MARK_PUBLISHED, [c.change_id for c in result.changes])
        self._count(len(events), result, time.perf_counter() - started)

    def _decode(self, record: ConsumerRecord) -> _Decoded | Message:
        """The event, its enrichment and its identity work, or a dead letter saying why not."""
        try:
            raw = RawEvent.from_json(record.value)
        except EventError as exc:
            return self._dead_letter(record, "invalid", "decode", str(exc))
        try:
            findings = self.enricher.enrich(raw)
            ids = identifiers_of(raw, self.rules)
        except Exception as exc:  # a bug or an input nobody foresaw must not block the partition
            log.exception("enrichment failed", extra={"event_id": raw.event_id})
            return self._dead_letter(record, "enrich_failed", "enrich", f"{type(exc).__name__}: {exc}")
        return _Decoded(raw, findings.fields, Work(ids, identify=not findings.is_bot, event_id=raw.event_id))

    def _dead_letter(self, record: ConsumerRecord, reason: str, stage: str, detail: str) -> Message:
        self.metrics.dead_letters.labels(reason=reason).inc()
        headers = [
            ("reason", detail.encode()[:500]),
            ("stage", stage.encode()),
            ("service", b"enricher"),
            ("first_seen", utc_now_iso().encode()),
        ]
        return self.topics.dlq, record.key or b"", record.value or b"", headers

    async def _resolve(self, work: list[Work]) -> BatchResult:
        assert self.graph is not None
        if not work:
            return BatchResult(persons=[])
        async with self.pool.acquire() as conn, conn.transaction():
            result = await self.graph.resolve_batch(conn, work)
        self.graph.commit(result)
        return result

    def _count(self, enriched: int, result: BatchResult, seconds: float) -> None:
        m = self.metrics
        m.enriched.inc(enriched)
        m.batch_seconds.observe(seconds)
        for kind, n in result.skipped.items():
            m.identifiers_skipped.labels(type=kind).inc(n)
        if result.conflicts:
            m.conflicts.inc(result.conflicts)
        for change in result.changes:
            m.identity_changes.labels(kind=change.kind).inc()

    async def publish_leftover_changes(self) -> int:
        """Identity changes committed to PostgreSQL whose Kafka transaction never committed: send them now."""
        assert self.producer is not None
        total = 0
        while True:
            rows = await self.pool.fetch(queries.UNPUBLISHED, 1000)
            if not rows:
                return total
            changes = [
                IdentityChange(
                    change_id=r[0],
                    kind=r[1],
                    person_id=r[2],
                    merged=list(r[3]),
                    at=r[4].isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                )
                for r in rows
            ]
            async with self.producer.transaction():
                await self._publisher.publish(
                    [(self.topics.identity_changes, c.key(), c.to_json(), None) for c in changes]
                )
            await self.pool.execute(queries.MARK_PUBLISHED, [c.change_id for c in changes])
            total += len(changes)
            log.info("published leftover identity changes", extra={"count": len(changes)})


@dataclass(frozen=True, slots=True)
class _Decoded:
    raw: RawEvent
    findings: dict[str, Any]
    work: Work


class _WaitForBatch(ConsumerRebalanceListener):  # type: ignore[misc]
    """Let the batch in flight commit before partitions move to another replica."""

    def __init__(self, lock: asyncio.Lock) -> None:
        self.lock = lock

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self.lock:
            pass

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        return None
