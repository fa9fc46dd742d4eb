"""Kafka helpers: topic names, topic creation, and the producer and consumer settings Leadline relies on."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

log = logging.getLogger(__name__)
DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class Topics:
    """Every topic name, with the deployment's prefix applied (architecture.md §2)."""

    raw: str
    enriched: str
    identity_changes: str
    dlq: str
    config: str

    @classmethod
    def with_prefix(cls, prefix: str) -> Topics:
        """The standard names, each prefixed (tests use a prefix per test so they never share topics)."""
        return cls(
            raw=f"{prefix}capture.raw.v1",
            enriched=f"{prefix}capture.enriched.v1",
            identity_changes=f"{prefix}identity.changes.v1",
            dlq=f"{prefix}capture.dlq.v1",
            config=f"{prefix}crm.config.v1",
        )

    def specs(self, partitions: int) -> list[NewTopic]:
        """Topic definitions: per-visitor topics partitioned, the config topic compacted with one partition."""
        retention = {"retention.ms": str(7 * DAY_MS)}
        return [
            NewTopic(self.raw, partitions, 1, topic_configs=retention),
            NewTopic(self.enriched, partitions, 1, topic_configs=retention),
            NewTopic(self.identity_changes, partitions, 1, topic_configs={"retention.ms": "-1"}),
            NewTopic(self.dlq, 1, 1, topic_configs={"retention.ms": str(30 * DAY_MS)}),
            NewTopic(self.config, 1, 1, topic_configs={"cleanup.policy": "compact"}),
        ]


def partition_for(key: bytes, count: int) -> int:
    """The partition of a key on capture.raw.v1: CRC-32 of the key, modulo the partition count.

    Every producer of the raw topic (the collector's publisher, crm-core's outbox) must use this one rule, or
    one key could land on two partitions and lose its order. Not Kafka's murmur2: it is pure Python in aiokafka,
    a tenth of a pixel request's budget, and new visitors never hit a cache.
    """
    return zlib.crc32(key) % count


def retention_days(topics: Topics) -> dict[str, float | None]:
    """How long each topic keeps a message, in days (None: kept until compacted or forever), from :meth:`specs`;
    what ``leadline erase`` tells the operator about copies it cannot delete."""
    out: dict[str, float | None] = {}
    for spec in topics.specs(1):
        ms = int((spec.topic_configs or {}).get("retention.ms", "-1"))
        out[spec.name] = ms / DAY_MS if ms >= 0 else None
    return out


def retention_note(topics: Topics) -> str:
    """What erasure cannot reach: events already on the capture topics stay until those topics' retention ends.

    The identity graph and the CRM hold nothing of the person afterwards, and identity.changes.v1 never carries
    identifier values; but Kafka cannot delete single messages from the raw, enriched and dead-letter topics.
    Told by ``leadline erase`` and by crm-core's erase endpoint.
    """
    days = retention_days(topics)
    kept = ", ".join(
        f"{name} ({days[name]:g} days)"
        for name in (topics.raw, topics.enriched, topics.dlq)
        if days.get(name) is not None
    )
    return f"events that carried its identifiers expire from Kafka with their topics' retention: {kept}"


async def ensure_topics(bootstrap: str, topics: Topics, partitions: int = 6) -> list[str]:
    """Create the missing topics; returns the names created. Safe to call from several processes at once."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in topics.specs(partitions) if spec.name not in existing]
        created = await _create(admin, missing) if missing else []
        if created:
            await _wait_for_metadata(admin, created)
            log.info("topics created", extra={"topics": created})
        return created
    finally:
        await admin.close()


async def _create(admin: AIOKafkaAdminClient, specs: list[NewTopic]) -> list[str]:
    """Create ``specs`` in one request (one round trip, not one per topic: a test makes a dozen topics); the
    names created. A topic another process made meanwhile is not an error; any other refusal is raised."""
    response = await admin.create_topics(specs)
    created = []
    for name, code, *_message in response.topic_errors:
        if code == 0:
            created.append(name)
        elif code != TopicAlreadyExistsError.errno:
            raise for_code(code)(f"creating topic {name}")
    return created


async def _wait_for_metadata(admin: AIOKafkaAdminClient, names: list[str], timeout: float = 15.0) -> None:
    """Wait until new topics show up in metadata so the first produce does not race their creation."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if set(names) <= set(await admin.list_topics()):
            return
        await asyncio.sleep(0.1)


def producer(
    bootstrap: str, *, transactional_id: str | None = None, linger_ms: int = 5, **extra: Any
) -> AIOKafkaProducer:
    """An idempotent, acks=all producer (transactional when given an id); not started."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        linger_ms=linger_ms,
        transactional_id=transactional_id,
        max_batch_size=256 * 1024,
        **extra,
    )


async def start_clients(*clients: AIOKafkaProducer | AIOKafkaConsumer, stop_timeout: float = 5.0) -> None:
    """Start Kafka clients in order. When one fails (Kafka unreachable at start), stop every one of them, each
    within ``stop_timeout``, so none is left half-open, then raise the failure."""
    try:
        for client in clients:
            await client.start()
    except BaseException:
        for client in clients:
            await stop_client(client, stop_timeout)
        raise


async def stop_client(client: AIOKafkaProducer | AIOKafkaConsumer, timeout: float = 5.0) -> None:
    """Stop with a deadline, ignoring errors: with the broker down an idempotent producer's ``stop()`` would wait
    for it. For a client given up on; one whose work must be flushed is stopped directly."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(timeout):
            await client.stop()


async def abandon_producer(producer: AIOKafkaProducer, timeout: float = 1.0) -> None:
    """Close a producer now, failing whatever it still holds instead of waiting for Kafka to take it.

    ``stop()`` alone waits until every batch is delivered, and an idempotent producer never gives up on a batch,
    so a wedged one would never stop. Its batches' futures fail with :class:`KafkaError` here; the caller has
    those records elsewhere (the collector's spool). Uses aiokafka's accumulator and sender (pinned in the lock
    file; tests/shared/test_kafka.py holds it to a real broker), because aiokafka has no public abort.
    """
    sender = getattr(producer, "_sender", None)
    with contextlib.suppress(Exception):  # first stop sending; it may end with the very error that wedged it
        if sender is not None:
            await asyncio.wait_for(sender.close(), timeout)
    accumulator = getattr(producer, "_message_accumulator", None)
    if accumulator is not None:
        accumulator.fail_all(KafkaError("producer abandoned"))
    with contextlib.suppress(Exception):  # nothing left to flush now: this closes the connections
        await asyncio.wait_for(producer.stop(), timeout)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(producer.client.close(), timeout)
    _read_drain_waiters(accumulator)


def _read_drain_waiters(accumulator: Any) -> None:
    """Read the outcome of each batch's "drained" waiter that ``fail_all`` failed.

    aiokafka fails a batch still queued for its partition twice: its acknowledgement (the caller's to read) and its
    drained waiter, which only a later batch for the same partition would have awaited. Unread, that waiter logged
    "Future exception was never retrieved" when the collector replaced a producer during a Kafka outage, and in the
    enricher's abandon path too (issue 18). The failed batches stay in the accumulator, so they are read after it is
    closed, which also covers a batch its sender put back in the queue while closing."""
    for queued in getattr(accumulator, "_batches", {}).values():
        for batch in queued:
            waiter = getattr(batch, "_drain_waiter", None)
            if isinstance(waiter, asyncio.Future) and waiter.done() and not waiter.cancelled():
                waiter.exception()


def consumer(bootstrap: str, topics: list[str], group_id: str, **extra: Any) -> AIOKafkaConsumer:
    """A read_committed consumer with manual commits, so offsets move only after our work is done."""
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **extra,
    )


async def broker_reachable(bootstrap: str, timeout: float = 2.0) -> bool:
    """True when a broker in ``bootstrap`` accepts a TCP connection within ``timeout`` (for /readyz)."""
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout)
        except (OSError, TimeoutError):
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True
    return False
