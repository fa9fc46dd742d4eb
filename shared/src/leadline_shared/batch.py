"""The one batch sender: every Leadline producer (the collector's publisher, the enricher, crm-core's outbox)
fills Kafka record batches itself and hands them over with ``send_batch()``.

aiokafka's ``send()`` costs 10 to 12 µs of CPU per message (infra-notes); filling record batches ourselves and
handing them over with ``send_batch()`` costs about a third of that, which matters at 20k events/s. One rule
chooses partitions for every service: capture.raw.v1 uses :func:`leadline_shared.kafka.partition_for` (CRC-32, so
a key keeps its partition whoever writes it); every other topic uses Kafka's default murmur2, so a key lands
where a Java producer would put it.

Three ways in, one per need:

- :meth:`BatchSender.publish`: send messages and wait until the broker has them all (the enricher, inside its
  transaction);
- :meth:`BatchSender.send`: one acknowledgement future per message, in order (crm-core's outbox, which must find
  which row Kafka refused);
- :meth:`BatchSender.batches` then :meth:`BatchSender.hand_over`: the record batches themselves, each carrying
  the caller's items, handed over one by one with a deadline (the collector's publisher, which settles its
  callers' waiters per batch and spools what Kafka does not take in time). :meth:`batches` is synchronous and
  allocates nothing per message beyond the record: it is the collector's hot path.

Deadlines are the caller's: every method here may wait on Kafka (metadata, room in the producer's buffer), and
:meth:`hand_over` takes a ``timeout`` for the callers that must never wait without one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.partitioner import murmur2

from leadline_shared.kafka import abandon_producer, partition_for

Headers = list[tuple[str, bytes]]
Message = tuple[str, bytes, bytes | None, Headers | None]
"""topic, key, value (None: a tombstone), headers."""
T = TypeVar("T")
_NO_HEADERS: Headers = []


@dataclass(slots=True)
class Batch(Generic[T]):
    """One record batch for one partition, and the caller's items it holds, in the order they were added."""

    topic: str
    partition: int
    builder: Any  # aiokafka's BatchBuilder (untyped)
    items: list[T] = field(default_factory=list)


class BatchSender:
    """Groups messages by partition into record batches and submits them to one producer.

    ``raw_topic``: the name (with the deployment's prefix) of capture.raw.v1, whose keys are placed by
    :func:`partition_for` instead of murmur2. A sender belongs to its producer: whoever replaces the producer
    makes a new sender.
    """

    def __init__(self, producer: AIOKafkaProducer, raw_topic: str | None = None) -> None:
        self.producer = producer
        self.raw_topic = raw_topic
        self._partitions: dict[str, int] = {}
        self._slots: dict[bytes, int] = {}

    async def partitions(self, topic: str) -> int:
        """The topic's partition count (asked of Kafka once, then remembered); :meth:`batches` needs it."""
        count = self._partitions.get(topic)
        if count is None:
            count = self._partitions[topic] = len(await self.producer.partitions_for(topic))
        return count

    def batches(
        self,
        topic: str,
        items: Iterable[T],
        key: Callable[[T], bytes],
        value: Callable[[T], bytes | None],
        headers: Callable[[T], Headers | None] | None = None,
    ) -> list[Batch[T]]:
        """Fill record batches with ``items`` (not handed over yet); per partition they come in item order.

        Raises :class:`RuntimeError` unless :meth:`partitions` has been awaited for ``topic``.
        """
        count = self._partitions.get(topic)
        if count is None:
            raise RuntimeError(f"BatchSender.batches({topic!r}) before partitions({topic!r}) was awaited")
        place = partition_for if topic == self.raw_topic else self._murmur2
        create = self.producer.create_batch
        open_batches: dict[int, Batch[T]] = {}
        appends: dict[int, Callable[..., Any]] = {}
        full: list[Batch[T]] = []
        for item in items:
            k, v = key(item), value(item)
            h = _NO_HEADERS if headers is None else headers(item) or _NO_HEADERS
            partition = place(k, count)
            batch = open_batches.get(partition)
            if batch is None:
                batch = open_batches[partition] = Batch(topic, partition, create())
                appends[partition] = _records(batch.builder).append
            if appends[partition](len(batch.items), None, k, v, h) is None:  # full: the next batch takes it
                full.append(_sealed(batch))
                batch = open_batches[partition] = Batch(topic, partition, create())
                appends[partition] = _records(batch.builder).append
                appends[partition](0, None, k, v, h)  # an empty batch takes any one record
            batch.items.append(item)
        full.extend(_sealed(batch) for batch in open_batches.values())
        return full

    async def hand_over(self, batch: Batch[T], timeout: float | None = None) -> asyncio.Future[Any]:
        """Give one batch to the producer; returns its acknowledgement. ``timeout`` bounds the handing over
        (waiting for metadata or for room in the producer's buffer), not the acknowledgement.

        The future's outcome is always read, so one the caller abandons after its own deadline never logs
        "exception was never retrieved".
        """
        async with asyncio.timeout(timeout):  # no extra task per batch, unlike wait_for
            future: asyncio.Future[Any] = await self.producer.send_batch(
                batch.builder, batch.topic, partition=batch.partition
            )
        future.add_done_callback(_retrieve)
        return future

    async def send(self, messages: Sequence[Message]) -> list[asyncio.Future[Any]]:
        """Hand every message over; returns one acknowledgement per message, in order (the messages of one record
        batch share theirs). A message larger than the producer may send is not sent: its future fails with
        :class:`MessageSizeTooLargeError` at once, as ``producer.send()`` would have raised."""
        futures: list[asyncio.Future[Any] | None] = [None] * len(messages)
        limit: int = getattr(self.producer, "_max_request_size", 1048576)
        by_topic: dict[str, list[int]] = {}
        for i, (topic, key, value, _) in enumerate(messages):
            if len(key) + len(value or b"") > limit:
                futures[i] = _failed(MessageSizeTooLargeError(f"message of {len(value or b'')} bytes"))
            else:
                by_topic.setdefault(topic, []).append(i)
        for topic, indexes in by_topic.items():
            await self.partitions(topic)
            for batch in self.batches(
                topic,
                indexes,
                key=lambda i: messages[i][1],
                value=lambda i: messages[i][2],
                headers=lambda i: messages[i][3],
            ):
                future = await self.hand_over(batch)
                for i in batch.items:
                    futures[i] = future
        return [f for f in futures if f is not None]

    async def publish(self, messages: Sequence[Message]) -> None:
        """Send every message (in the producer's open transaction, if it has one) and wait until the broker has
        them all; raises the first failure."""
        await asyncio.gather(*await self.send(messages))

    async def abandon(self, timeout: float = 1.0) -> None:
        """Close the producer at once, failing every batch it still holds (:func:`kafka.abandon_producer`, which
        also reads the waiters aiokafka fails with them)."""
        await abandon_producer(self.producer, timeout)

    def _murmur2(self, key: bytes, count: int) -> int:
        """Kafka's default partitioner, with the pure-Python hash cached per key."""
        slot = self._slots.get(key)
        if slot is None:
            if len(self._slots) > 100_000:
                self._slots.clear()
            slot = self._slots[key] = murmur2(key) & 0x7FFFFFFF
        return slot % count


def _records(builder: Any) -> Any:
    """The record batch inside aiokafka's ``BatchBuilder``, appended to directly by :meth:`BatchSender.batches`.

    ``BatchBuilder.append`` is a Python wrapper (keyword arguments, serializers we do not use, a closed check) that
    cost more than the record itself: 300 ns of the 430 an event took, a tenth of what a beacon's event cost the
    collector. Appending to the record batch (aiokafka's C ``DefaultRecordBatchBuilder``) with each record's
    offset, then setting the count the wrapper would have kept (:func:`_sealed`), gives the same batch
    (``tests/shared/test_batch_records``); the test fails first if an aiokafka upgrade changes either.
    """
    return builder._builder


def _sealed(batch: Batch[T]) -> Batch[T]:
    """``batch`` with its builder's record count set (what ``BatchBuilder.append`` counts, send_batch reads)."""
    batch.builder._relative_offset = len(batch.items)
    return batch


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Read a future's outcome so an abandoned one does not log "exception was never retrieved"."""
    if not future.cancelled():
        future.exception()


def _failed(exc: BaseException) -> asyncio.Future[Any]:
    """An acknowledgement that already failed with ``exc``."""
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_exception(exc)
    future.add_done_callback(_retrieve)
    return future
