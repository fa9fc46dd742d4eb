"""Consume raw events, resolve identity, produce enriched events: exactly once per Kafka transaction.

Each batch is one Kafka transaction: the enriched events, the identity changes, any dead letters and the
consumed offsets commit together, so a crash anywhere in between replays the batch and read_committed readers
never see a half. The identity graph commits to PostgreSQL just before; a replayed batch finds its persons
already there and resolves to the same ones. Identity changes go through an outbox table: a change whose Kafka
transaction was lost is published again at start-up.

Throughput: batch N+1 is decoded, enriched and resolved while batch N's Kafka transaction commits (the
transactions themselves stay strictly in order), messages are appended to record batches directly, and the
JSON out is the decoded document plus the findings (no second dataclass round trip).

Broker outages (issue 17): a Kafka error during a batch (broker gone or back, leader not yet elected, the
producer's sender dead, the transaction fenced or aborted as a consequence) aborts that batch's transaction, drops
the producer for a new one (whose start with the same transactional id fences the old one and aborts whatever it
left open), rewinds the consumer to the committed offsets and replays from there after a capped back-off. Nothing
of the aborted batch is visible to read_committed readers, and its identity writes are idempotent, so the replay
duplicates nothing; other errors are bugs and still end the task (and /readyz).

Partition hand-over: a rebalance waits for the batch being prepared and the transaction in flight (the revoke
callback takes the same lock as the loop), so the next owner of a partition starts from committed offsets and
nothing is processed twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.errors import KafkaError, KafkaTimeoutError

from leadline_enricher import queries
from leadline_enricher.enrich import EventEnricher
from leadline_enricher.identifiers import CRM_CONTACT, Ident, IdentifierRules, identifiers_of
from leadline_enricher.identity import BatchResult, IdentityGraph, Work, erase_person
from leadline_enricher.metrics import EnricherMetrics
from leadline_shared import kafka, pg, service
from leadline_shared.batch import BatchSender, Message
from leadline_shared.capture import batches
from leadline_shared.events import (
    EventError,
    IdentityChange,
    RawEvent,
    erase_request_of,
    merge_request_of,
    utc_now_iso,
)
from leadline_shared.service import cancel_and_wait, started

log = logging.getLogger(__name__)

TRANSIENT_DB_ERRORS = pg.UNAVAILABLE
"""PostgreSQL down, restarting or unreachable: worth waiting for, unlike a bug or a constraint error."""

TRANSACTION_DEADLINE_S = 60.0
"""Longest one batch's Kafka transaction may take (its commit or abort included) before it counts as failed:
aiokafka's abort can wait for ever on a producer whose connection is gone."""


@dataclass
class KafkaRetry:
    """The back-off after a Kafka failure and its log: one line per cause per ``every`` seconds, with a count of
    the failures held back, then one line when a batch commits again."""

    first: float = 0.5
    cap: float = 10.0
    every: float = 10.0
    failures: int = 0
    _delay: float = 0.0
    _shown: dict[str, float] = field(default_factory=dict)
    _held: dict[str, int] = field(default_factory=dict)

    def failed(self, exc: BaseException) -> float:
        """Count a failure, log it unless its cause was logged lately; the seconds to wait before retrying."""
        self.failures += 1
        self._delay = min(self.cap, self._delay * 2 or self.first)
        cause, now = type(exc).__name__, time.monotonic()
        last = self._shown.get(cause)
        if last is not None and now - last < self.every:
            self._held[cause] = self._held.get(cause, 0) + 1
        else:
            self._shown[cause] = now
            log.warning(
                "kafka failed mid-batch: transaction aborted, batch replayed from the committed offsets",
                extra={
                    "error": cause,
                    "detail": str(exc)[:200],
                    "repeated": self._held.pop(cause, 0),
                    "retry_in": self._delay,
                },
            )
        return self._delay

    def succeeded(self) -> None:
        """A batch committed: log the recovery once and start the back-off over."""
        if self.failures:
            log.info("kafka back: batches commit again", extra={"failures": self.failures})
        self.failures, self._delay = 0, 0.0
        self._shown.clear()
        self._held.clear()


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
    kafka_timeout_ms: int = 40000  # a record waiting longer for Kafka fails its batch, which is replayed
    rules: IdentifierRules = field(default_factory=IdentifierRules)
    enricher: EventEnricher = field(default_factory=EventEnricher)
    graph: IdentityGraph | None = None  # None: a new one with ``rules`` (a benchmark passes a warm one)
    _consumer: AIOKafkaConsumer | None = field(default=None, init=False)
    _producer: AIOKafkaProducer | None = field(default=None, init=False)
    first_batch_at: float | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _inflight: asyncio.Future[None] | None = None
    _follower: asyncio.Future[None] | None = None
    kafka_retry: KafkaRetry = field(default_factory=KafkaRetry)

    def __post_init__(self) -> None:
        if self.graph is None:
            self.graph = IdentityGraph(self.rules)

    @property
    def identity(self) -> IdentityGraph:
        """The identity graph (always there: made in ``__post_init__`` when none was given)."""
        return started(self.graph, "the enricher's identity graph")

    @property
    def consumer(self) -> AIOKafkaConsumer:
        """The consumer ``start()`` created."""
        return started(self._consumer, "the enricher's consumer")

    @property
    def producer(self) -> AIOKafkaProducer:
        """The transactional producer ``start()`` created."""
        return started(self._producer, "the enricher's producer")

    async def start(self) -> None:
        """Connect the transactional producer, publish leftover identity changes, join the group."""
        self.enricher.user_agents.lookup("Mozilla/5.0")  # load the parsers' rules now, not on the first batch
        service.tune_gc()  # after the parsers loaded their rules, so those are frozen
        await self._start_producer()
        self._consumer = kafka.consumer(
            self.bootstrap,
            [],
            self.group_id,
            max_poll_records=self.batch_max,
            fetch_max_bytes=16 * 1024 * 1024,
        )
        await self._consumer.start()
        self._consumer.subscribe([self.topics.raw], listener=_WaitForBatch(self))
        self._follower = asyncio.ensure_future(self._follow_changes())

    async def _start_producer(self) -> None:
        """A new transactional producer (fencing any earlier one of this replica), then the identity changes
        whose Kafka transaction never committed."""
        self._producer = kafka.producer(
            self.bootstrap, transactional_id=self.transactional_id, request_timeout_ms=self.kafka_timeout_ms
        )
        await self._producer.start()
        self._publisher = BatchSender(self._producer, self.topics.raw)
        await self.publish_leftover_changes()

    async def stop(self) -> None:
        """Leave the group and close the producer (an open transaction is aborted by the broker)."""
        if self._follower is not None:
            await cancel_and_wait(self._follower)
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()

    async def run(self) -> None:
        """Process batches until cancelled; after a Kafka failure, reconnect and replay from the committed
        offsets (after a capped back-off) instead of ending."""
        while True:
            try:
                if self._producer is None:  # dropped after a failure
                    await self._start_producer()
                    await self._rewind()
                await self._consume()
            except KafkaError as exc:
                self.metrics.kafka_retries.inc()
                delay = self.kafka_retry.failed(exc)
                await self._drop_producer()
                await asyncio.sleep(delay)

    async def _consume(self) -> None:
        """Process batches until cancelled or a failure; a batch is prepared while the previous one commits."""
        try:
            while True:
                batch = await self.consumer.getmany(timeout_ms=500, max_records=self.batch_max)
                if not batch:
                    await self._settle()
                    continue
                async with self._lock:
                    prepared = await self.prepare(batch)
                    await self._settle()
                    self._inflight = asyncio.ensure_future(self.commit(prepared))
        finally:
            if self._inflight is not None:
                await cancel_and_wait(self._inflight)
                self._inflight = None

    async def _drop_producer(self) -> None:
        """Close the failed producer without waiting for Kafka; the next one's start fences it and aborts the
        transaction it left open."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await kafka.abandon_producer(producer)

    async def _rewind(self) -> None:
        """Move the consumer back to the committed offsets, so the aborted batches are read again."""
        consumer = self.consumer
        for tp in consumer.assignment():
            offset = await consumer.committed(tp)
            if offset is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, offset)

    async def _settle(self) -> None:
        """Wait for the Kafka transaction in flight; its failure stops the loop (the batch is replayed)."""
        if self._inflight is not None:
            task, self._inflight = self._inflight, None
            await task

    async def process(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """Enrich one batch start to finish (prepare, then commit)."""
        await self.commit(await self.prepare(batch))

    async def prepare(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> _Prepared:
        """Decode, enrich and resolve a batch; the identity graph commits to PostgreSQL here."""
        started = time.perf_counter()
        if self.first_batch_at is None:
            self.first_batch_at = started
        out: list[Message] = []
        events: list[_Decoded] = []
        work: list[Work] = []
        erase: list[str] = []
        split = [0, 0]
        for records in batch.values():
            for record in records:
                decoded = self._decode(record)
                if isinstance(decoded, _Decoded):
                    events.append(decoded)
                    work.append(decoded.work)
                elif isinstance(decoded, _Erase):
                    erase.append(decoded.person)
                elif isinstance(decoded, _Split):
                    out.extend(decoded.messages)
                    split[0] += 1
                    split[1] += len(decoded.messages)
                else:
                    out.append(decoded)
        result = await self._resolve(work, erase)
        enriched = self.topics.enriched
        verdicts: list[dict[str, list[str]] | None] = list(result.identity) or [None] * len(events)
        for event, person_id, verdict in zip(events, result.persons, verdicts, strict=True):
            out.append((enriched, person_id.encode(), event.enriched(person_id, verdict), None))
        for change in result.changes:
            out.append((self.topics.identity_changes, change.key(), change.to_json(), None))
        offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
        return _Prepared(out, offsets, result, len(events), started, split[0], split[1])

    async def commit(self, prepared: _Prepared) -> None:
        """One Kafka transaction: enriched events, identity changes, dead letters and the consumed offsets."""
        try:
            async with asyncio.timeout(TRANSACTION_DEADLINE_S), self.producer.transaction():
                await self._publisher.publish(prepared.out)
                await self.producer.send_offsets_to_transaction(prepared.offsets, self.group_id)
        except TimeoutError as exc:
            raise KafkaTimeoutError(f"transaction not done in {TRANSACTION_DEADLINE_S:g} s") from exc
        self.kafka_retry.succeeded()
        changes = prepared.result.changes
        if changes:
            await self.pool.execute(queries.MARK_PUBLISHED, [c.change_id for c in changes])
        self._count(prepared.events, prepared.result, time.perf_counter() - prepared.started)
        if prepared.split_records:
            self.metrics.split_records.inc(prepared.split_records)
            self.metrics.split_events.inc(prepared.split_events)

    def _decode(self, record: ConsumerRecord) -> _Decoded | _Erase | _Split | Message:
        """The event, its enrichment and its identity work, crm-core's erase request, the events a Segment
        batch record splits into, or a dead letter saying why not."""
        try:
            doc = orjson.loads(record.value or b"")
        except orjson.JSONDecodeError as exc:
            return self._dead_letter(record, "invalid", "decode", f"invalid JSON: {exc}")
        if not isinstance(doc, dict):
            return self._dead_letter(record, "invalid", "decode", "event is not a JSON object")
        try:
            raw = RawEvent.from_dict(doc)
        except EventError as exc:
            return self._dead_letter(record, "invalid", "decode", str(exc))
        if raw.type in batches.TYPES:
            return self._split(record, raw)
        if (person := erase_request_of(raw)) is not None:
            persons = _uuids([person])
            if not persons:
                return self._dead_letter(record, "invalid", "decode", "erase request without a person id")
            return _Erase(persons[0])
        try:
            findings = self.enricher.enrich(raw)
            ids = identifiers_of(raw, self.rules)
        except Exception as exc:  # a bug or an input nobody foresaw must not block the partition
            log.exception("enrichment failed", extra={"event_id": raw.event_id})
            return self._dead_letter(record, "enrich_failed", "enrich", f"{type(exc).__name__}: {exc}")
        return _Decoded(doc, findings.fields, work_for(raw, ids, findings.may_identify))

    def _split(self, record: ConsumerRecord, raw: RawEvent) -> _Split | Message:
        """The events of a Segment batch's or a beacon's record, to publish back to capture.raw.v1 in this batch's
        transaction
        (each keyed by its own identity, so its owner enriches it), or a dead letter saying why not.

        Published, not enriched here: a record's messages may be several visitors', and each visitor's events
        must be enriched by the one consumer that owns its partition (the identity cache is per process).
        """
        try:
            made = batches.split(raw)
        except batches.RecordError as exc:
            return self._dead_letter(record, "invalid", "split", str(exc))
        except Exception as exc:  # a bug or an input nobody foresaw must not block the partition
            log.exception("split failed", extra={"event_id": raw.event_id})
            return self._dead_letter(record, "split_failed", "split", f"{type(exc).__name__}: {exc}")
        raw_topic = self.topics.raw
        return _Split([(raw_topic, event.wire_key, event.wire_value, None) for event in made])

    def _dead_letter(self, record: ConsumerRecord, reason: str, stage: str, detail: str) -> Message:
        self.metrics.dead_letters.labels(reason=reason).inc()
        headers = [
            ("reason", detail.encode()[:500]),
            ("stage", stage.encode()),
            ("service", b"enricher"),
            ("first_seen", utc_now_iso().encode()),
        ]
        return self.topics.dlq, record.key or b"", record.value or b"", headers

    async def _resolve(self, work: list[Work], erase: Sequence[str] = ()) -> BatchResult:
        """Resolve the batch's identities; while PostgreSQL is unreachable, wait and try again.

        crm-core's erase requests (``erase``: person ids) are carried out first, in the same transaction, as
        ``leadline erase --person`` does: the batch's events then find the persons' identifiers tombstoned, and
        the ``erase`` changes go out with the batch. The batch stays in hand meanwhile (its offsets are not
        committed), so nothing is skipped; a rebalance waits for it too.
        """
        if not work and not erase:
            return BatchResult(persons=[])
        delay = 0.2
        while True:
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    erased = [c for p in erase if (c := await erase_person(conn, p)) is not None]
                    for change in erased:
                        self.identity.apply(change)  # forget the erased persons' cached identifiers
                    result = (
                        await self.identity.resolve_batch(conn, work) if work else BatchResult(persons=[])
                    )
                    result.changes[:0] = erased
                break
            except TRANSIENT_DB_ERRORS as exc:
                self.metrics.retries.inc()
                log.warning("identity store unavailable, batch retried", extra={"error": type(exc).__name__})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        self.identity.commit(result)
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

    async def _follow_changes(self) -> None:
        """Keep the identity cache true to merges and erasures made elsewhere (other replicas, ``leadline erase``).

        Reads identity.changes.v1 from its end as it was at start-up; without this a cached cookie would keep
        pointing at a person another process merged away or erased.
        """
        follower = AIOKafkaConsumer(
            self.topics.identity_changes,
            bootstrap_servers=self.bootstrap,
            group_id=None,
            isolation_level="read_committed",
            enable_auto_commit=False,
            auto_offset_reset="latest",
        )
        await follower.start()
        try:
            while True:
                batch = await follower.getmany(timeout_ms=500)
                for records in batch.values():
                    for record in records:
                        self._apply_change(record.value)
        finally:
            await follower.stop()

    def _apply_change(self, value: bytes | None) -> None:
        try:
            change = IdentityChange.from_json(value or b"")
        except EventError:
            log.warning("undecodable identity change ignored")
            return
        self.identity.apply(change)

    async def publish_leftover_changes(self) -> int:
        """Identity changes committed to PostgreSQL whose Kafka transaction never committed: send them now."""
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
                    identifier=orjson.loads(r[5]) if r[5] is not None else None,
                    other=r[6],
                    event_id=r[7],
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


def work_for(raw: RawEvent, ids: list[Ident], may_identify: bool) -> Work:
    """The identity work of one event. The CRM's ``unlink`` (source api) names its person by crm_contact_id and
    lists the identifiers that person no longer holds; it identifies nobody. The CRM's ``merge`` request names
    the persons a rep confirmed are its crm_contact_id's (events.merge_request)."""
    if (request := merge_request_of(raw)) is not None:
        contact = [i for i in ids if i[0] == CRM_CONTACT]
        return Work(contact, identify=False, event_id=raw.event_id, merge=tuple(_uuids(request[1])))
    if raw.type == "unlink":
        contact = [i for i in ids if i[0] == CRM_CONTACT]
        detach = tuple(i for i in ids if i[0] != CRM_CONTACT) if raw.source == "api" else ()
        return Work(contact, identify=False, event_id=raw.event_id, detach=detach)
    return Work(ids, identify=may_identify, event_id=raw.event_id)


def _uuids(values: list[str]) -> list[str]:
    """The canonical form of the values that are UUIDs (person ids), the others left out."""
    out = []
    for value in values:
        try:
            out.append(str(uuid.UUID(value)))
        except ValueError:
            continue
    return out


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A batch ready for its Kafka transaction."""

    out: list[Message]
    offsets: dict[TopicPartition, int]
    result: BatchResult
    events: int
    started: float
    split_records: int = 0
    split_events: int = 0


@dataclass(frozen=True, slots=True)
class _Split:
    """The events a Segment batch record splits into, as messages for capture.raw.v1."""

    messages: list[Message]


@dataclass(frozen=True, slots=True)
class _Erase:
    """crm-core's request to erase a person (events.erase_request): not enriched, carried out by the graph."""

    person: str


@dataclass(frozen=True, slots=True)
class _Decoded:
    """A valid raw event as decoded (unknown fields included), its enrichment and its identity work."""

    doc: dict[str, Any]
    findings: dict[str, Any]
    work: Work

    def enriched(self, person_id: str, identity: dict[str, list[str]] | None = None) -> bytes:
        """The EnrichedEvent's wire form: the raw document (IP already truncated), the findings and the graph's
        verdict on the event's identifiers (``identity``).

        Same JSON as ``EnrichedEvent.from_raw(...).to_json()`` (tested), without building the dataclass twice.
        """
        doc = self.doc
        doc["person_id"] = person_id
        for name, value in self.findings.items():
            if value is not None:
                doc[name] = value
        if identity is not None:
            doc["identity"] = identity
        return orjson.dumps(doc)


class _WaitForBatch(ConsumerRebalanceListener):  # type: ignore[misc]
    """Let the batch in flight commit before partitions move to another replica."""

    def __init__(self, enricher: Enricher) -> None:
        self.enricher = enricher

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self.enricher._lock:
            inflight = self.enricher._inflight
            if inflight is not None:
                await asyncio.wait([inflight])

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        return None
