"""The interface routes publish through; they never see Kafka or the spool.

The product's sink is :class:`publisher.Publisher` (Kafka, with the disk spool in front). ``create_app`` takes
any other object with these methods (``create_app(settings, sink=...)``): the route tests use an in-memory one,
so what a route answers and which event it builds are tested without a broker.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Hashable, Sequence
from operator import attrgetter
from typing import Protocol, TypeVar

from leadline_collector.metrics import CollectorMetrics

__all__ = [
    "Publishable",
    "Sink",
    "SinkUnavailable",
    "record_all_or_count",
    "record_or_count",
    "store_or_count",
    "tally",
]


class SinkUnavailable(RuntimeError):
    """The event could not be accepted (the spool is full); forms answer 503 with Retry-After."""


class Publishable(Protocol):
    """What a sink reads of an event: a :class:`leadline_shared.events.RawEvent`, or one the route encoded already
    (:class:`leadline_shared.events.EncodedEvent`, what Segment calls and beacons build)."""

    @property
    def event_id(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def source(self) -> str: ...

    def key(self) -> bytes: ...

    def to_json(self) -> bytes: ...


class Sink(Protocol):
    """Accepts events for the raw topic; the app starts it before serving and stops it after."""

    async def start(self) -> None:
        """Get ready to take events (the publisher opens the spool and connects Kafka if it answers)."""

    async def stop(self) -> None:
        """Deliver or keep what was accepted, then let go of every resource."""

    async def store(self, event: Publishable, durable: bool = False) -> None:
        """Accept one event; with ``durable`` return only once it is safe (acknowledged by Kafka or fsync'd).

        Raises :class:`SinkUnavailable` when the event cannot be accepted.
        """

    def store_nowait(self, event: Publishable) -> None:
        """Accept one event without waiting (raises :class:`SinkUnavailable` when it cannot be accepted)."""

    def store_all_nowait(self, events: Sequence[Publishable]) -> None:
        """Accept several events without waiting, in order; raises :class:`SinkUnavailable`, having taken none of
        them, when they cannot all be accepted."""

    def store_durable(self, events: Sequence[Publishable]) -> asyncio.Future[None]:
        """Accept events; the future resolves once all are safe, or fails with :class:`SinkUnavailable`.

        ``await store(event, durable=True)`` is this future awaited for one event. A future rather than a
        coroutine lets the fast path, which cannot await, answer a Segment call when its events are safe, and one
        future for a whole batch costs less than one per event. Raises :class:`SinkUnavailable` at once when the
        events cannot even be accepted.
        """

    def throttle(self) -> asyncio.Future[None] | None:
        """None: answer now. A future: the sink holds more events than it has yet passed on, so a caller whose
        answer does not wait for its events (a beacon) answers once the future resolves, and clients send no
        faster than Kafka takes their events. Shared by every caller: shield it where the caller may be
        cancelled."""

    async def is_healthy(self) -> bool:
        """Whether the sink can take events now (``/readyz`` answers 503 when it cannot)."""


async def store_or_count(sink: Sink, metrics: CollectorMetrics, event: Publishable) -> bool:
    """Fire-and-forget capture (pixels, clicks, beacons): the visitor is answered either way; a drop is counted."""
    return record_or_count(sink, metrics, event)


def record_all_or_count(sink: Sink, metrics: CollectorMetrics, events: Sequence[Publishable]) -> int:
    """:func:`record_or_count` for the events of one request (a beacon's): how many were accepted.

    Stored in one go, which costs a fraction of one call per event; when the sink cannot take them all (a nearly
    full spool), one by one as before, so what fits is kept and the rest counted as dropped.
    """
    try:
        sink.store_all_nowait(events)
    except SinkUnavailable:
        return sum(record_or_count(sink, metrics, event) for event in events)
    for (type_, source), count in tally(list(map(_TYPE_AND_SOURCE, events))).items():
        metrics.events.inc(type_, source, count)
    return len(events)


_TYPE_AND_SOURCE = attrgetter("type", "source")
K = TypeVar("K", bound=Hashable)


def tally(keys: list[K]) -> dict[K, int]:
    """How many of each key, in first-seen order. The events of one request nearly always share theirs (one
    page's beacon, one SDK's batch of tracks): that case is one C-level count, where building a ``Counter``
    cost a microsecond or two per request."""
    if not keys:
        return {}
    first = keys[0]
    if keys.count(first) == len(keys):
        return {first: len(keys)}
    return dict(Counter(keys))


def record_or_count(sink: Sink, metrics: CollectorMetrics, event: Publishable) -> bool:
    """:func:`store_or_count` for callers that cannot await (the fast path answers inside ``data_received``)."""
    try:
        sink.store_nowait(event)
    except SinkUnavailable:
        metrics.dropped.labels(source=event.source).inc()
        return False
    metrics.events.inc(event.type, event.source)
    return True
