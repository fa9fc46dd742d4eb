"""The outbox: Kafka messages crm-core owes, kept in PostgreSQL until Kafka has acknowledged them.

A change that must reach Kafka — a form, ad or write key for the collector (``crm.config.v1``, a tombstone when
it goes away), a lead or contact detail a rep typed in for the enricher (``capture.raw.v1``) — inserts its
message with :func:`write` on the connection of the transaction that makes the change. Both commit or neither
does: a crash right after the commit, or Kafka being down for an hour, loses nothing, and a rolled-back change
sends nothing.

The :class:`Relay` sends the rows in id order through the shared batch sender
(:class:`leadline_shared.batch.BatchSender`: record batches, capture.raw.v1 placed by the one raw partitioner) and deletes them once Kafka acknowledged them. Delivery is at
least once: a crash between the acknowledgement and the delete sends a row again, which both topics absorb
(the config topic is compacted by key; raw events carry an ``event_id`` that every consumer deduplicates on).

Order per key: rows of one key are written by transactions that lock the same row first (the form, the ad, the
person) or wait on the same unique key, so they commit in the order their ids were taken, and the relay sends
them in that order. Rows of different keys may overtake each other, which no consumer minds.

One sender: every crm-core replica runs a relay, but only the one holding a PostgreSQL advisory lock (one per
schema, :mod:`leadline_crm.leader`) sends; the others stand by and take over when the leader's session ends. Two senders could interleave a
put and a later tombstone of one key and leave the collector with a deleted form.

Waking: :func:`write` NOTIFYs in the writer's transaction, so the leader — in whichever replica — hears of a
row as soon as it commits; it also looks every ``poll_seconds`` in case a notification was missed.

Kafka down: the idempotent producer keeps what it was given and retries on its own until the broker is back, so
the relay waits for those acknowledgements instead of sending the rows again (a long outage piles up no
copies). A producer that cannot start, or a send that fails outright, ends the leader's term; the relay backs
off, starts a fresh producer and sends again from the oldest row.

A row Kafka refuses outright — larger than the topic accepts, or malformed — would otherwise be retried forever
and hold up every row behind it. The relay moves it to ``outbox_dead`` (with the error's name, never its
content), counts it in ``leadline_crm_outbox_dead_total``, logs its id, and goes on. To find which row of a batch
was refused (the sender gives each row its acknowledgement; rows in one record batch share it) and keep the
order per key, the rows from the first refused one on are sent again one at a time, each acknowledged before
the next; rows acknowledged twice are absorbed like any other at-least-once copy.

Readiness (:meth:`Relay.healthy`): the replica whose relay leads, or fails to, is not ready while the oldest row
has waited longer than ``stale_seconds`` (``LEADLINE_CRM_OUTBOX_STALE_SECONDS``). A Kafka blip of a few seconds
leaves readiness alone; a relay that is really stuck shows, and a rollout whose relay cannot publish halts.
Standbys stay ready: nothing they could do would help, and taking every replica out of service for one stuck
sender would take the API down with it (writes still work while the outbox fills).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTimestampError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)
from prometheus_client import CollectorRegistry, Counter, Gauge

from leadline_crm import leader, queries
from leadline_shared import batch, kafka, siteconfig
from leadline_shared.batch import BatchSender

log = logging.getLogger(__name__)

Kind = Literal["config", "raw"]
REFUSED = (MessageSizeTooLargeError, RecordListTooLargeError, CorruptRecordException, InvalidTimestampError)
"""Kafka errors about the message itself: sending it again can never succeed."""
Message = tuple[Kind, bytes, bytes | None]
"""(topic kind, key, value); a value of None is a tombstone."""


def config_entry(entry: siteconfig.Entry) -> Message:
    """The collector's copy of a form, ad or write key."""
    key, value = siteconfig.encode(entry)
    return "config", key, value


def config_tombstone(entry_key: str) -> Message:
    """Deletes an entry at the collector."""
    return "config", entry_key.encode(), None


async def write(conn: asyncpg.Connection, messages: Sequence[Message]) -> None:
    """Owe ``messages`` to Kafka, in order; call inside the transaction that makes the change they announce."""
    if messages:
        await conn.execute(
            queries.OUTBOX_WRITE,
            [m[0] for m in messages],
            [m[1] for m in messages],
            [m[2] for m in messages],
        )


@dataclass
class Relay:
    """Sends the outbox to Kafka while this replica holds the schema's outbox lock; stands by otherwise."""

    pool: asyncpg.Pool
    bootstrap: str
    topics: kafka.Topics
    registry: CollectorRegistry
    stale_seconds: float = 60.0
    batch_size: int = 500
    poll_seconds: float = 5.0
    standby_seconds: float = 5.0
    retry_seconds: float = 1.0
    max_retry_seconds: float = 30.0
    state: leader.State = "starting"
    _producer: AIOKafkaProducer | None = field(default=None, repr=False)
    _sender: BatchSender | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.sent = Counter(
            "leadline_crm_outbox_sent", "Outbox messages Kafka acknowledged", registry=self.registry
        )
        self.failures = Counter(
            "leadline_crm_outbox_failures",
            "Relay terms that ended in an error (then retried)",
            registry=self.registry,
        )
        self.dead = Counter(
            "leadline_crm_outbox_dead",
            "Outbox messages Kafka refused outright, moved to the outbox_dead table",
            registry=self.registry,
        )
        self.leading = Gauge(
            "leadline_crm_outbox_leader",
            "1 while this replica's relay sends the outbox",
            registry=self.registry,
        )

    def topic(self, kind: str) -> str:
        """The topic of a row's kind, with this deployment's prefix."""
        return self.topics.config if kind == "config" else self.topics.raw

    async def run(self) -> None:
        """Relay until cancelled: lead when the lock is free, else stand by; back off and retry after a failure."""
        backoff = leader.Backoff(self.retry_seconds, self.max_retry_seconds, self.standby_seconds)
        try:
            await leader.keep(self._term, "outbox relay", self._set_state, backoff, self._failed)
        finally:
            self.leading.set(0)
            await self._drop_producer()

    def _set_state(self, state: leader.State) -> None:
        self.state = state

    async def _failed(self, exc: Exception) -> None:
        """Count a failed term; a Kafka or network error drops the producer, so the next term starts a fresh one."""
        self.failures.inc()
        if isinstance(exc, KafkaError | OSError):
            await self._drop_producer()

    async def _term(self) -> bool:
        """One term as leader, until an error; False at once when another replica leads."""
        async with leader.term(self.pool, "outbox") as term:
            if term is None:
                return False
            self.leading.set(1)
            try:
                await self._lead(term.conn, term.wake)
            finally:
                self.leading.set(0)
        return True

    async def _lead(self, conn: asyncpg.Connection, wake: asyncio.Event) -> None:
        """Send what is there, then wait for a notification (or the poll interval) and send again."""
        sender = await self._started_sender()
        if self.state != "leading":
            log.info("outbox relay leads")
        self.state = "leading"
        while True:
            wake.clear()
            rows = await conn.fetch(queries.OUTBOX_NEXT, self.batch_size)
            if rows:
                sent = await self._send(sender, rows)
                if sent < len(rows):  # Kafka refused a row: find it, one row at a time
                    await self._done(conn, rows[:sent])
                    sender = await self._restart_producer()
                    for row in rows[sent:]:
                        if not await self._send_alone(conn, sender, row):
                            sender = await self._restart_producer()
                else:
                    await self._done(conn, rows)
                continue
            await leader.woken(wake, self.poll_seconds)

    async def _send(self, sender: BatchSender, rows: Sequence[asyncpg.Record]) -> int:
        """Hand the rows to the producer in order, then wait for every acknowledgement, however long it takes.

        Returns how many rows, from the first, were acknowledged before the first one Kafka refused (all of them
        when none was; a row larger than the producer may send is refused before it leaves); any other error
        ends the term.
        """
        acks = await sender.send([self._message(row) for row in rows])
        results = await asyncio.gather(*acks, return_exceptions=True)
        for i, result in enumerate(results):
            if isinstance(result, REFUSED):
                return i
            if isinstance(result, BaseException):
                raise result
        return len(rows)

    def _message(self, row: asyncpg.Record) -> batch.Message:
        """A row as the sender takes it: its topic (with the prefix), key and value (None: a tombstone)."""
        return self.topic(row["topic"]), row["key"], row["value"], None

    async def _send_alone(self, conn: asyncpg.Connection, sender: BatchSender, row: asyncpg.Record) -> bool:
        """Send one row and wait for its acknowledgement; False when Kafka refused it (moved to ``outbox_dead``)."""
        try:
            [ack] = await sender.send([self._message(row)])
            await ack
        except REFUSED as exc:
            await conn.execute(queries.OUTBOX_BURY, row["id"], type(exc).__name__)
            self.dead.inc()
            log.error(
                "kafka refused an outbox message; moved to outbox_dead",
                extra={"outbox_id": row["id"], "topic": row["topic"], "error": type(exc).__name__},
            )
            return False
        await self._done(conn, [row])
        return True

    async def _restart_producer(self) -> BatchSender:
        """A fresh producer after a refusal: the idempotent producer's sequence numbers start over with it, so the
        batch that never landed leaves no gap the broker would refuse the next batches for."""
        await self._drop_producer()
        return await self._started_sender()

    async def _done(self, conn: asyncpg.Connection, rows: Sequence[asyncpg.Record]) -> None:
        """Forget rows Kafka acknowledged."""
        if rows:
            await conn.execute(queries.OUTBOX_DONE, [r["id"] for r in rows])
            self.sent.inc(len(rows))

    async def _started_sender(self) -> BatchSender:
        """The sender of this term's producer, which is started first if there is none."""
        if self._producer is None or self._sender is None:
            producer = kafka.producer(self.bootstrap, request_timeout_ms=10000)
            await kafka.start_clients(producer)
            self._producer, self._sender = producer, BatchSender(producer, raw_topic=self.topics.raw)
        return self._sender

    async def _drop_producer(self) -> None:
        """Let go of the producer (a fresh one is started for the next term)."""
        producer, self._producer, self._sender = self._producer, None, None
        if producer is not None:
            await kafka.stop_client(producer)

    async def healthy(self) -> bool:
        """Ready unless this replica should be sending and the oldest row waited past ``stale_seconds``."""
        if self.state == "standby":
            return True
        age = await self.pool.fetchval(queries.OUTBOX_AGE)
        return age is None or age < self.stale_seconds
