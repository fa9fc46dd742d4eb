"""The collector's sink: Kafka first, the disk spool whenever Kafka is slow or down.

Events are batched by hand with the shared sender (:class:`leadline_shared.batch.BatchSender`: record batches per
partition, placed by the raw topic's one partitioner), which costs a third of what ``producer.send()`` per event
does. Every batch sent has a deadline: aiokafka's idempotent producer never gives up on a batch while the broker
is down, so when the deadline passes the publisher switches to spooling —
the batches in flight and everything after them go to the spool, in order, and form posts are answered once
their records are fsync'd. When Kafka answers again, the stuck batches complete first (their ids are noted so
their spooled copies are skipped), then the spool is replayed oldest first, and only when it is empty do events
go straight to Kafka again. Per-visitor order therefore holds across an outage, and nothing accepted is lost.

Recovery cannot wedge: every wait in it has a deadline, and a producer that fails to flush or deliver is closed
and replaced by a fresh one (its records are in the spool already; the event-id dedup downstream absorbs a copy
that did get through). That is not hypothetical: after an outage of about a minute, aiokafka's idempotent
producer expires batches it had already numbered (LeaderNotAvailableError while the broker is gone), which
leaves a gap in its per-partition sequence; the restarted broker then answers OutOfOrderSequenceNumber to every
later batch, and aiokafka never resets the sequence. The old loop kept retrying that producer forever. A new
producer gets a new producer id, and its sequences start again at zero.

Recovery cannot die silently either (issue 17: an ENOSPC while recording replay progress ended the task, and the
spool sat on disk until a restart): any other error in an attempt is logged with its type, counted in
``leadline_collector_recovery_errors_total{error}``, and retried with back-off, like an unreachable broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from leadline_collector.metrics import CollectorMetrics
from leadline_collector.sink import Publishable, SinkUnavailable
from leadline_collector.spool import Record, Spool, SpoolFull
from leadline_shared import kafka
from leadline_shared.batch import Batch, BatchSender
from leadline_shared.events import EncodedEvent
from leadline_shared.service import cancel_and_wait, started

log = logging.getLogger(__name__)
RECOVER_MIN = 0.25  # seconds between recovery attempts while they make progress
RECOVER_MAX = 5.0  # ... and at most this long while Kafka stays away (doubling in between)
PROGRESS_EVERY = 10.0  # seconds between replay progress lines
UNREACHABLE_LOG_EVERY = 30.0  # seconds between "kafka not reachable" lines during an outage
BACKLOG_HIGH = 1_000
"""Records queued and not yet handed to Kafka (or the spool) above which answers that do not wait for their
events (beacons) wait for the backlog to shrink: the collector then takes captures as fast as Kafka takes them,
instead of holding an ever longer queue in memory (/e was answered faster than it was published). A record is
one event, or a whole beacon or Segment batch (leadline_shared.capture.batches): a few MB at most. It was
5,000 when a record was one event; 5,000 whole beacons held /e's answers for a quarter of a second (p99 289 ms
in make bench)."""
BACKLOG_LOW = 500
"""... and the backlog at which they are answered again."""


class _Parts:
    """The one waiter the events of a durable call of several (a Segment batch) share: the call's future resolves
    once every event has succeeded, or fails with the first that fails.

    One object per call, settled a batch at a time (:func:`_settle` counts a batch's events per waiter): a waiter
    per event and a ``set_result`` per event cost a tenth of what a Segment batch's event cost the collector.
    Each queued event is settled exactly once (by its batch's acknowledgement or by its spool write; a batch moved
    to the spool is never settled by Kafka as well), so counting down cannot resolve the call early.
    """

    __slots__ = ("_call", "_left")

    def __init__(self, call: asyncio.Future[None], left: int) -> None:
        self._call, self._left = call, left

    def settle(self, count: int, error: BaseException | None) -> None:
        """``count`` of the call's events are done: stored, or failed with ``error``."""
        call = self._call
        if call.done():
            return
        if error is not None:
            call.set_exception(error)
            return
        self._left -= count
        if self._left <= 0:
            call.set_result(None)


Waiter = asyncio.Future[None] | _Parts | None
Item = tuple[str, bytes, bytes, Waiter]
"""An event queued for Kafka: a spool :class:`Record`'s fields (event id, key, value), then the waiter of a durable
store (None for a pixel). Flat, so one tuple is made per hit and C-level getters read it in the hot loop."""
KEY = itemgetter(1)  # of an Item, and of a Record
VALUE = itemgetter(2)
WAITER = itemgetter(3)


@dataclass
class _InFlight:
    items: list[Item]
    sent_at: float
    spooled: bool = False
    done: bool = False
    failed: bool = False


@dataclass
class Publisher:
    """The collector's :class:`sink.Sink`: Kafka first, the spool whenever Kafka is slow or down."""

    bootstrap: str
    topic: str
    spool: Spool
    metrics: CollectorMetrics
    deadline: float = 2.0
    linger: float = 0.002
    batch_max: int = 1000
    _producer: AIOKafkaProducer | None = None
    _sender: BatchSender | None = None
    _pending: list[Item] = field(default_factory=list)
    _inflight: list[_InFlight] = field(default_factory=list)
    _delivered: set[str] = field(default_factory=set)
    _spooling: bool = False
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _awaited: bool = False
    """Something queued has a caller waiting for its acknowledgement (a Segment call, a form): the flush after an
    idle moment does not linger for more events, as it does for pixels and beacons (whose answers do not wait).
    Lingering added its 2 ms to every answer of a lightly loaded collector, and under load aiokafka gathers what
    comes while a request is in flight anyway (it holds one batch per partition until that one is sent)."""
    _sending: int = 0
    """Events the flush loop has taken from ``_pending`` and not yet handed over (part of the backlog)."""
    _room: asyncio.Future[None] | None = None
    """Resolved once the backlog is down to :data:`BACKLOG_LOW` (:meth:`throttle`)."""
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _stopping: bool = False
    _unreachable_logged: float = float("-inf")
    _progress_at: float = 0.0
    _progress_count: int = 0
    _replayed_total: int = 0

    # --- lifecycle -------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the spool (replaying what a previous run left), connect Kafka if it answers, start the loops."""
        waiting = self.spool.open()
        if waiting:
            log.info("spool holds events from before; replaying", extra={"records": waiting})
            self._enter_spooling("spool not empty at start")
        if not await self._connect():
            self._enter_spooling("kafka unreachable at start")
        self._tasks = [asyncio.ensure_future(self._flush_loop()), asyncio.ensure_future(self._recover_loop())]
        self._update_gauges()

    async def stop(self) -> None:
        """Flush what is queued to Kafka within the deadline, spool the rest, close the spool."""
        self._stopping = True
        for task in self._tasks:
            await cancel_and_wait(task)
        if self._pending and not self._spooling and self._producer is not None:
            items, self._pending = self._pending, []
            self._sending += len(items)
            await self._send(items)
        if self._producer is not None and not self._spooling:
            try:
                await asyncio.wait_for(self._producer.flush(), self.deadline)
            except (TimeoutError, KafkaError):
                self._enter_spooling("kafka did not confirm before shutdown")
        if self._spooling and self._pending:
            items, self._pending = self._pending, []
            await self._to_spool(items)
        await self.spool.close()
        room, self._room, self._sending = self._room, None, 0
        if room is not None and not room.done():  # whoever waits for room is answered: nothing is queued now
            room.set_result(None)
        if self._producer is not None:
            producer, self._producer = self._producer, None
            try:
                await asyncio.wait_for(producer.stop(), self.deadline)
            except (TimeoutError, KafkaError):
                log.warning("kafka producer did not stop in time; its unsent batches are in the spool")

    async def _connect(self) -> bool:
        """Start a producer and learn the topic's partitions; False if Kafka does not answer in time."""
        producer = kafka.producer(
            self.bootstrap, linger_ms=0, request_timeout_ms=int(self.deadline * 1000) + 1000
        )
        sender = BatchSender(producer, raw_topic=self.topic)
        try:
            await asyncio.wait_for(producer.start(), self.deadline * 2)
            await asyncio.wait_for(sender.partitions(self.topic), self.deadline * 2)
        except (TimeoutError, KafkaError, OSError) as exc:
            now = time.monotonic()
            if now - self._unreachable_logged >= UNREACHABLE_LOG_EVERY:
                self._unreachable_logged = now
                log.warning(
                    "kafka not reachable",
                    extra={"error": type(exc).__name__, "spool_records": self.spool.records_waiting},
                )
            await sender.abandon()
            self.metrics.kafka_reachable.set(0)
            return False
        self._producer, self._sender = producer, sender
        self.metrics.kafka_reachable.set(1)
        return True

    async def _replace_producer(self, reason: str) -> None:
        """Close the producer, failing what it still holds (all of it is in the spool), so the next attempt
        starts a fresh one with a new producer id and fresh sequence numbers."""
        sender, self._producer, self._sender = self._sender, None, None
        if sender is None:
            return
        self._spool_inflight()
        self.metrics.producer_replaced.inc()
        log.warning(
            "kafka producer failed to deliver; replacing it",
            extra={"reason": reason, "spool_records": self.spool.records_waiting},
        )
        await sender.abandon()

    # --- accepting events ------------------------------------------------------------------------------------
    async def store(self, event: Publishable, durable: bool = False) -> None:
        """Accept an event. ``durable``: return only once Kafka acknowledged it or the spool fsync'd it."""
        if not durable:
            self.store_nowait(event)
            return
        await self.store_durable([event])

    def store_durable(self, events: Sequence[Publishable]) -> asyncio.Future[None]:
        """Accept events; the future resolves once Kafka acknowledged them all or the spool fsync'd them."""
        if self._spooling:
            return _unavailable_on_error(self._spool_now(events))
        call: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if len(events) == 1:
            event = events[0]
            self._queue((event.event_id, event.key(), event.to_json(), call))
            return call
        if not events:
            call.set_result(None)
            return call
        self._queue_all(_items(events, _Parts(call, len(events))), awaited=True)
        return call

    def store_nowait(self, event: Publishable) -> None:
        """Accept an event without waiting for anything: queued for Kafka, or appended to the spool."""
        if self._spooling:
            self._spool_now([event]).add_done_callback(self._pixel_written)
            return
        self._queue((event.event_id, event.key(), event.to_json(), None))

    def store_all_nowait(self, events: Sequence[Publishable]) -> None:
        """:meth:`store_nowait` for several events (a beacon's) in one go, all or none."""
        if not events:
            return
        if self._spooling:
            fut = self._spool_now(events)
            fut.add_done_callback(functools.partial(self._pixel_written, count=len(events)))
            return
        self._queue_all(_items(events, None))

    def _spool_now(self, events: Sequence[Publishable]) -> asyncio.Future[None]:
        """Append events to the spool, counted as spooled; the future resolves once they are fsync'd. Raises
        :class:`SinkUnavailable` when the spool refuses them."""
        try:
            fut = self.spool.append_nowait([Record(e.event_id, e.key(), e.to_json()) for e in events])
        except SpoolFull as exc:
            raise SinkUnavailable(str(exc)) from exc
        self.metrics.spooled.inc(len(events))
        return fut

    def _pixel_written(self, fut: asyncio.Future[None], count: int = 1) -> None:
        """Read the outcome of a spool write nobody waits for (a pixel is answered at once): a failed write is a
        drop of its ``count`` events, counted (the spool logs the disk error once). Unread, each failure was a
        "Future exception was never retrieved" line (issue 17)."""
        if not fut.cancelled() and fut.exception() is not None:
            self.metrics.dropped.labels(source="spool_error").inc(count)

    def _queue(self, item: Item) -> None:
        self._pending.append(item)
        if item[3] is not None:
            self._awaited = True
        if len(self._pending) == 1 or len(self._pending) >= self.batch_max:
            self._wake.set()

    def _queue_all(self, items: list[Item], awaited: bool = False) -> None:
        """:meth:`_queue` for the events of one call, in one go (``awaited``: the caller waits for them)."""
        pending = self._pending
        was_empty = not pending
        pending.extend(items)
        if awaited:
            self._awaited = True
        if was_empty or len(pending) >= self.batch_max:
            self._wake.set()

    def throttle(self) -> asyncio.Future[None] | None:
        """None while the backlog is under :data:`BACKLOG_HIGH`; above it, a future resolved once it is down to
        :data:`BACKLOG_LOW` (shared by every caller: shield it before awaiting it where a caller may be
        cancelled)."""
        if len(self._pending) + self._sending < BACKLOG_HIGH:
            return None
        if self._room is None:
            self._room = asyncio.get_running_loop().create_future()
        self.metrics.held.inc()
        return self._room

    def _handed_over(self, count: int) -> None:
        """``count`` events of the flush loop's left the backlog (to Kafka or the spool)."""
        self._sending -= count
        room = self._room
        if room is not None and len(self._pending) + self._sending <= BACKLOG_LOW:
            self._room = None
            if not room.done():
                room.set_result(None)

    async def is_healthy(self) -> bool:
        """Able to take events: Kafka is up, or the spool still has room (it has not refused one)."""
        return not self.spool.refusing

    @property
    def kafka_ok(self) -> bool:
        """Events go straight to Kafka (not spooling)."""
        return not self._spooling

    # --- the Kafka path --------------------------------------------------------------------------------------
    async def _flush_loop(self) -> None:
        while True:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                if len(self._pending) < self.batch_max and not self._awaited:
                    await asyncio.sleep(self.linger)
            items, self._pending, self._awaited = self._pending, [], False
            self._sending += len(items)
            try:
                if self._spooling or self._producer is None:
                    await self._to_spool(items)
                else:
                    await self._send(items)
            finally:
                self._handed_over(self._sending)

    async def _send(self, items: list[Item]) -> None:
        """Send items in one batch per partition; on any failure they go to the spool instead.

        Cancelled (the collector stopping while a backlog is handed over), it puts the batches not yet taken back
        at the head of the queue, in order, for :meth:`stop` to send or spool: before, they were lost.
        """
        sender = started(self._sender, "the publisher's Kafka producer")
        batches = in_rounds(sender.batches(self.topic, items, KEY, VALUE))
        for n, batch in enumerate(batches):
            taken = n
            try:
                spooled = await self._submit(sender, batch)
                taken = n + 1
                self._handed_over(len(batch.items))
                if spooled is not None:
                    with contextlib.suppress(SpoolFull):
                        await spooled
            except asyncio.CancelledError:
                self._pending[:0] = [item for unsent in batches[taken:] for item in unsent.items]
                raise

    async def _submit(self, sender: BatchSender, batch: Batch[Item]) -> asyncio.Future[None] | None:
        """Hand one batch over within the deadline; once spooling, or if that fails, spool it instead and return
        the spool write (queued already: the batch is taken either way once this returns)."""
        items = batch.items
        if self._spooling or sender is not self._sender:  # a failure meanwhile: the rest go to the spool
            return self._spool_items(items)
        entry = _InFlight(items, time.monotonic())
        try:
            fut = await sender.hand_over(batch, self.deadline)
        except (TimeoutError, KafkaError) as exc:
            self._enter_spooling(f"send failed: {type(exc).__name__}")
            return self._spool_items(items)
        self._inflight.append(entry)
        fut.add_done_callback(functools.partial(self._delivered_cb, entry))
        return None

    def _delivered_cb(self, entry: _InFlight, fut: asyncio.Future[Any]) -> None:
        entry.done = True
        ok = not fut.cancelled() and fut.exception() is None
        if entry.spooled:  # its copy is in the spool already: only note that replay may skip it
            if ok:
                self._delivered.update(item[0] for item in entry.items)
            return
        if ok:
            with contextlib.suppress(ValueError):
                self._inflight.remove(entry)
            self.metrics.published.inc(len(entry.items))
            _settle(entry.items, None)
            return
        entry.failed = True
        self._enter_spooling("kafka rejected a batch")

    # --- the spool path --------------------------------------------------------------------------------------
    def _enter_spooling(self, reason: str) -> None:
        if not self._spooling:
            log.warning("kafka slow or down: spooling events to disk", extra={"reason": reason})
            self._spooling = True
            self._update_gauges()
        self._spool_inflight()

    def _spool_inflight(self) -> None:
        """Move every batch still waiting for Kafka to the spool, oldest first (their order is kept)."""
        for entry in list(self._inflight):
            if not entry.spooled and (not entry.done or entry.failed):
                entry.spooled = True
                self._spool_items(entry.items)
        self._inflight = [e for e in self._inflight if not e.done and not e.spooled]

    async def _to_spool(self, items: list[Item]) -> None:
        """Spool items and wait until they are fsync'd (their waiters are resolved either way)."""
        fut = self._spool_items(items)
        if fut is not None:
            with contextlib.suppress(SpoolFull):
                await fut

    def _spool_items(self, items: list[Item]) -> asyncio.Future[None] | None:
        """Queue items on the spool now (synchronously, so spool order is call order)."""
        if not items:
            return None
        try:
            fut = self.spool.append_nowait([Record(i[0], i[1], i[2]) for i in items])
        except SpoolFull as exc:
            self.metrics.dropped.labels(source="spool_full").inc(len(items))
            _settle(items, SinkUnavailable(str(exc)))
            return None

        def done(f: asyncio.Future[None]) -> None:
            error = f.exception()
            if error is None:
                self.metrics.spooled.inc(len(items))
            else:  # the disk failed us: counted, and form posts are answered 503 so the client retries
                self.metrics.dropped.labels(source="spool_error").inc(len(items))
                log.error("spool write failed", extra={"events": len(items), "error": str(error)})
            _settle(items, SinkUnavailable(str(error)) if error else None)

        fut.add_done_callback(done)
        return fut

    async def _recover_loop(self) -> None:
        pause = RECOVER_MIN
        while True:
            await asyncio.sleep(pause if self._spooling else 0.1)
            try:
                pause = await self._recover_step(pause)
            except Exception as exc:  # whatever it is, recovery must go on (issue 17)
                self.metrics.recovery_errors.labels(error=type(exc).__name__).inc()
                log.error(
                    "spool recovery attempt failed; retrying",
                    extra={"error": type(exc).__name__, "retry_in_seconds": min(pause * 2, RECOVER_MAX)},
                    exc_info=exc,
                )
                pause = min(pause * 2, RECOVER_MAX)

    async def _recover_step(self, pause: float) -> float:
        """One round of the recovery loop; returns the pause before the next."""
        now = time.monotonic()
        if any(not e.done and now - e.sent_at > self.deadline for e in self._inflight):
            self._enter_spooling("kafka did not acknowledge within the deadline")
        if self._spooling:
            progressed = await self._try_recover()
            pause = RECOVER_MIN if progressed else min(pause * 2, RECOVER_MAX)
        else:
            pause = RECOVER_MIN
        self._update_gauges()
        return pause

    async def _try_recover(self) -> bool:
        """Once Kafka answers again: let stuck batches finish, replay the spool, then go direct.

        True when the attempt made progress (records replayed, or back to direct publishing). Any failure
        replaces the producer: the next attempt connects afresh instead of retrying one that may be wedged.
        """
        if self._producer is None and not await self._connect():
            return False
        producer = started(self._producer, "the publisher's Kafka producer")
        replayed = self._replayed_total
        try:
            async with asyncio.timeout(self.deadline):
                await producer.flush()
            await self._replay()
        except (TimeoutError, KafkaError) as exc:
            await self._replace_producer(type(exc).__name__)
            return self._replayed_total > replayed
        if not self.spool.sealed() and self.spool.active_empty and not self._pending:
            self._spooling = False
            self._delivered.clear()
            self._progress_at = 0.0
            log.info("kafka is back and the spool is empty: publishing directly again")
            return True
        return self._replayed_total > replayed

    async def _replay(self) -> None:
        """Publish sealed segments oldest first; raises (TimeoutError, KafkaError) if Kafka fails meanwhile."""
        await self.spool.seal()
        for segment in self.spool.sealed():
            records = self.spool.read(segment)
            for start in range(0, len(records), self.batch_max):
                chunk = records[start : start + self.batch_max]
                todo = [r for _, r in chunk if r.event_id not in self._delivered]
                if todo:
                    await self._publish_and_wait(todo)
                self.spool.mark_done(segment, chunk[-1][0], len(chunk))
                self.metrics.replayed.inc(len(todo))
                self._replayed_total += len(chunk)
                self._log_progress(len(chunk))
            self.spool.remove(segment)

    def _log_progress(self, count: int) -> None:
        """A line every PROGRESS_EVERY seconds while the spool drains: records left and the replay rate."""
        now = time.monotonic()
        if not self._progress_at:
            self._progress_at, self._progress_count = now, 0
            log.info("replaying the spool", extra={"records_left": self.spool.records_waiting})
        self._progress_count += count
        if now - self._progress_at >= PROGRESS_EVERY:
            rate = self._progress_count / (now - self._progress_at)
            log.info(
                "replaying the spool",
                extra={"records_left": self.spool.records_waiting, "records_per_second": round(rate)},
            )
            self._progress_at, self._progress_count = now, 0

    async def _publish_and_wait(self, records: list[Record]) -> None:
        """Publish records and wait for Kafka's acknowledgement, all within one deadline (raises on failure)."""
        sender = started(self._sender, "the publisher's Kafka producer")
        async with asyncio.timeout(self.deadline * 5):  # handing a batch over can wait too, not only its ack
            futures = [
                await sender.hand_over(batch)  # its outcome is read even if the deadline passes first
                for batch in sender.batches(self.topic, records, KEY, VALUE)
            ]
            await asyncio.gather(*futures)

    def _update_gauges(self) -> None:
        self.metrics.backlog.set(len(self._pending) + self._sending)
        self.metrics.spool_bytes.set(self.spool.size_bytes)
        self.metrics.spool_records.set(self.spool.records_waiting)
        self.metrics.spool_oldest_age.set(self.spool.oldest_age())
        self.metrics.kafka_up.set(0 if self._spooling else 1)
        if not self._spooling:
            self.metrics.kafka_reachable.set(1)


def in_rounds(batches: list[Batch[Item]]) -> list[Batch[Item]]:
    """``batches`` with every partition's first batch before any partition's second, and so on; each partition's
    own in their order.

    aiokafka holds one batch per partition until it is sent, so handing a partition's second batch over waits until
    the first has gone. In the order they were filled (a backlog after a burst of beacons: several full batches of
    one partition, then the next partition's), each produce request then carried one partition's batch while the
    others waited behind it; in rounds, one request carries a batch of every partition.
    """
    if len(batches) <= 1:
        return batches
    by_partition: dict[int, list[Batch[Item]]] = {}
    for batch in batches:
        by_partition.setdefault(batch.partition, []).append(batch)
    if len(by_partition) == len(batches):
        return batches
    rounds = max(len(queue) for queue in by_partition.values())
    return [queue[n] for n in range(rounds) for queue in by_partition.values() if n < len(queue)]


def _items(events: Sequence[Publishable], waiter: Waiter) -> list[Item]:
    """The queue items of a call's events, all with the call's one waiter (an encoded event's fields read directly:
    two method calls per event were a noticeable share of a batch's cost)."""
    return [
        (e.event_id, e.wire_key, e.wire_value, waiter)
        if type(e) is EncodedEvent
        else (e.event_id, e.key(), e.to_json(), waiter)
        for e in events
    ]


def _settle(items: list[Item], error: Exception | None) -> None:
    """Resolve the durable waiters of items: success, or the error to answer with (one call per waiter)."""
    if not any(map(WAITER, items)):  # pixels, beacons: nobody waits (counting them cost 4% of a beacon)
        return
    for waiter, count in Counter(map(WAITER, items)).items():
        if waiter is None:
            continue
        if type(waiter) is _Parts:
            waiter.settle(count, error)
        elif not waiter.done():
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)


def _unavailable_on_error(fut: asyncio.Future[None]) -> asyncio.Future[None]:
    """``fut`` (a spool write), failing with :class:`SinkUnavailable` where it fails with :class:`SpoolFull`."""
    out: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def done(f: asyncio.Future[None]) -> None:
        error = None if f.cancelled() else f.exception()  # read even when nobody waits for ``out`` any more
        if out.done():
            return
        if f.cancelled():
            out.cancel()
        elif error is None:
            out.set_result(None)
        else:
            out.set_exception(SinkUnavailable(str(error)) if isinstance(error, SpoolFull) else error)

    fut.add_done_callback(done)
    return out
