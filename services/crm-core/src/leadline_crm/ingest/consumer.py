"""Ingestion: enriched events from Kafka into PostgreSQL, idempotent by ``event_id``.

A batch is written in one PostgreSQL transaction with array-parameter upserts; Kafka offsets are committed only
after that transaction commits, so a crash replays the batch and ``ON CONFLICT DO NOTHING`` absorbs it.

Nothing accepted is dropped (issue 11): an event or identity change crm-core cannot decode or store goes to
capture.dlq.v1 with its reason (``leadline dlq replay`` sends it back once the cause is fixed). A batch that
fails for any reason but an unreachable database is split in halves until the failing events stand alone, so
their batch-mates are stored; offsets are committed only once the stores and the dead letters are durable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter

from leadline_crm.ingest import identity
from leadline_crm.ingest.touch import Touch
from leadline_crm.ingest.touches import Contended, write_touches
from leadline_shared import dlq, kafka, pg, service
from leadline_shared.events import EventError, IdentityChange

log = logging.getLogger(__name__)
_T = TypeVar("_T")
P = TypeVar("P")


def tune_gc() -> None:
    """Decoding thousands of events a second allocates many short-lived dicts (see service.tune_gc)."""
    service.tune_gc(100_000)


RETRYABLE = pg.UNAVAILABLE
"""PostgreSQL unreachable, restarting or shutting down: the batch is kept and retried, nothing is committed."""


TRANSIENT = (*RETRYABLE, Contended, asyncpg.SerializationError, asyncpg.exceptions.InsufficientResourcesError)
"""Failures that say nothing about the events: the batch is retried whole. Anything else isolates the events
that fail and dead-letters them."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message crm-core gives up on: its key and bytes as they came, and why (see leadline_shared.dlq)."""

    key: bytes | None
    value: bytes
    kind: str  # the metric's label: "invalid" (cannot be decoded) or "unstorable" (PostgreSQL refused it)
    headers: list[tuple[str, bytes]]


def dead_letter(
    key: bytes | None, value: bytes, kind: str, stage: str, source: str, reason: str
) -> DeadLetter:
    """A dead letter of crm-core read from the topic ``source`` names (a field of kafka.Topics)."""
    return DeadLetter(key, value, kind, dlq.headers(reason, stage, "crm-core", source))


@dataclass
class Ingestor:
    """The consume → write (or dead-letter) → commit loop."""

    bootstrap: str
    topics: kafka.Topics
    group_id: str
    pool: asyncpg.Pool
    registry: CollectorRegistry
    batch_max: int = 1000
    writers: int = 2
    retry_delay: float = 0.5
    consumer: AIOKafkaConsumer | None = None
    producer: AIOKafkaProducer | None = None  # dead letters

    def __post_init__(self) -> None:
        self.written = Counter(
            "leadline_crm_touchpoints_written", "New touchpoints stored", registry=self.registry
        )
        self.changes = Counter(
            "leadline_crm_identity_changes_applied", "Identity changes applied", registry=self.registry
        )
        self.retries = Counter(
            "leadline_crm_write_retries",
            "Batches retried because PostgreSQL (or Kafka, for dead letters) was unavailable",
            registry=self.registry,
        )
        self.skipped = Counter(
            "leadline_crm_events_invalid", "Enriched events that failed validation", registry=self.registry
        )
        self.dead = Counter(
            "leadline_crm_dead_letters",
            "Events and identity changes sent to capture.dlq.v1, by reason (invalid, unstorable)",
            ["reason"],
            registry=self.registry,
        )

    async def start(self) -> None:
        """Start the dead-letter producer and join the consumer group."""
        if self.producer is None:
            self.producer = kafka.producer(self.bootstrap)
        self.consumer = kafka.consumer(
            self.bootstrap,
            [self.topics.enriched, self.topics.identity_changes],
            self.group_id,
            max_poll_records=self.batch_max,
        )
        try:
            await kafka.start_clients(self.producer, self.consumer)
        except BaseException:  # Kafka unreachable at start: no half-open client is left behind
            self.consumer = None
            raise

    async def stop(self) -> None:
        """Leave the group, then close the producer (every dead letter was awaited before its commit)."""
        if self.consumer is not None:
            await self.consumer.stop()
        if self.producer is not None:
            await self.producer.stop()

    async def run(self) -> None:
        """Ingest until cancelled.

        While PostgreSQL writes one batch, the next is fetched and decoded (the two run on different cores);
        a batch's offsets are committed only after its own transaction, and batches are written in order.
        """
        consumer = service.started(self.consumer, "the ingest consumer")
        writing: asyncio.Task[None] | None = None
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=200, max_records=self.batch_max)
                if not batch:
                    if writing is not None:
                        await writing
                        writing = None
                    continue
                dead: list[DeadLetter] = []
                touches = [
                    t
                    for tp, records in batch.items()
                    if tp.topic == self.topics.enriched
                    for t in self._decode(records, dead)
                ]
                changes = [
                    ch
                    for tp, records in batch.items()
                    if tp.topic == self.topics.identity_changes
                    for ch in self._changes(records, dead)
                ]
                offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(self._write(touches, changes, offsets, dead))
        finally:
            if writing is not None and not writing.done():
                await service.cancel_and_wait(writing)

    async def _write(
        self,
        touches: list[Touch],
        changes: list[IdentityChange],
        offsets: dict[Any, int],
        dead: list[DeadLetter] | None = None,
    ) -> None:
        """One batch: events, then identity changes, then dead letters, then the offsets.

        The events are split by person over ``writers`` connections written in parallel, so PostgreSQL works
        on more than one core; a person is in one shard only, so the shards do not wait on each other's rows.
        While PostgreSQL (or Kafka, for the dead letters) is unreachable the batch is retried with a growing
        pause and nothing is committed to Kafka; shards that did commit before the failure find their events
        stored on the retry (idempotent by event id, identity changes by change id). Any other failure is the
        events' own: those that fail alone are dead-lettered (:meth:`_isolate`) and the rest are stored.
        """
        consumer = service.started(self.consumer, "the ingest consumer")
        letters = list(dead or ())
        letters += await self._retrying(lambda: self._store(touches, changes))
        if letters:
            await self._retrying(lambda: self._send_dead(letters))
        await consumer.commit(offsets)

    async def _retrying(self, attempt: Callable[[], Awaitable[_T]]) -> _T:
        """``attempt()`` until it gets past transient failures, pausing longer each time (up to 10 s)."""
        delay = self.retry_delay
        while True:
            try:
                return await attempt()
            except (*TRANSIENT, KafkaError) as exc:
                self.retries.inc()
                log.warning(
                    "PostgreSQL or Kafka unavailable, batch kept for a retry",
                    extra={"error": type(exc).__name__, "retry_in_s": delay},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _store(self, touches: list[Touch], changes: list[IdentityChange]) -> list[DeadLetter]:
        """Store what can be stored; returns dead letters for the events and changes that cannot be."""
        shards: list[list[Touch]] = [[] for _ in range(max(self.writers, 1))]
        for t in touches:
            shards[hash(t.person_id) % len(shards)].append(t)
        results = await asyncio.gather(*(self._isolate(shard) for shard in shards if shard))
        self.written.inc(sum(n for n, _ in results))
        letters = [letter for _, found in results for letter in found]
        if changes:
            applied, refused = await self._apply(changes)
            self.changes.inc(applied)
            letters += refused
        return letters

    async def _isolate(self, touches: list[Touch]) -> tuple[int, list[DeadLetter]]:
        """Write ``touches``; on a failure that is the events' own, write each half apart, down to single events,
        and dead-letter those that fail alone. Returns how many were new and the dead letters."""
        try:
            return await self._write_shard(touches), []
        except TRANSIENT:
            raise
        except Exception as exc:
            if len(touches) == 1:
                return 0, [self._unstorable(touches[0], exc)]
        half = len(touches) // 2
        first, second = await self._isolate(touches[:half]), await self._isolate(touches[half:])
        return first[0] + second[0], first[1] + second[1]

    def _unstorable(self, t: Touch, exc: Exception) -> DeadLetter:
        # the exception's text may quote a value of the event: it goes in the dead letter, never in the log
        log.error("event cannot be stored, sent to the DLQ", extra={"error": type(exc).__name__})
        reason = f"{type(exc).__name__}: {exc}"
        return dead_letter(t.key, t.json.encode(), "unstorable", "store", "enriched", reason)

    async def _apply(self, changes: list[IdentityChange]) -> tuple[int, list[DeadLetter]]:
        """Apply identity changes in one transaction; when that fails for a reason of their own, one at a time,
        dead-lettering those that fail alone (a merge is never skipped silently)."""
        try:
            async with self.pool.acquire() as conn:
                return await identity.apply_changes(conn, changes), []
        except TRANSIENT:
            raise
        except Exception:
            log.warning("identity changes applied one at a time to find the one that fails")
        applied, letters = 0, []
        for change in changes:
            try:
                async with self.pool.acquire() as conn:
                    applied += await identity.apply_changes(conn, [change])
            except TRANSIENT:
                raise
            except Exception as exc:
                log.error(
                    "identity change cannot be applied, sent to the DLQ", extra={"error": type(exc).__name__}
                )
                reason = f"{type(exc).__name__}: {exc}"
                value = change.to_json()
                letters.append(
                    dead_letter(change.key(), value, "unstorable", "store", "identity_changes", reason)
                )
        return applied, letters

    async def _send_dead(self, letters: list[DeadLetter]) -> None:
        """Send dead letters and wait until Kafka has them all (only then may the batch's offsets move)."""
        producer = service.started(self.producer, "the dead-letter producer")
        sent = [await producer.send(self.topics.dlq, d.value, key=d.key, headers=d.headers) for d in letters]
        await asyncio.gather(*sent)
        for d in letters:
            self.dead.labels(reason=d.kind).inc()

    async def _write_shard(self, touches: list[Touch]) -> int:
        async with self.pool.acquire() as conn:
            return await write_touches(conn, touches)

    def _changes(self, records: list[ConsumerRecord], dead: list[DeadLetter]) -> Iterable[IdentityChange]:
        message = "invalid identity change sent to the DLQ"
        for _, change in self._parsed(records, dead, IdentityChange.from_json, message, "identity_changes"):
            yield change

    def _decode(self, records: list[ConsumerRecord], dead: list[DeadLetter]) -> Iterable[Touch]:
        message = "invalid enriched event sent to the DLQ"
        for record, touch in self._parsed(records, dead, Touch.parse, message, "enriched"):
            touch.key = record.key
            yield touch

    def _parsed(
        self,
        records: list[ConsumerRecord],
        dead: list[DeadLetter],
        parse: Callable[[bytes], P],
        message: str,
        source: str,
    ) -> Iterator[tuple[ConsumerRecord, P]]:
        """Each record with what ``parse`` makes of it; one it refuses is counted, logged (``message``) and
        dead-lettered as read from the topic ``source`` names."""
        for record in records:
            value = record.value or b""
            try:
                parsed = parse(value)
            except EventError as exc:
                self.skipped.inc()
                log.warning(
                    message,
                    extra={"reason": str(exc), "partition": record.partition, "offset": record.offset},
                )
                dead.append(dead_letter(record.key, value, "invalid", "decode", source, str(exc)))
                continue
            yield record, parsed
