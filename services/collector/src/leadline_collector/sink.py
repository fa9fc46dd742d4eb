"""The interface routes publish through; they never see Kafka or the spool (see :mod:`publisher`)."""

from __future__ import annotations

from typing import Protocol

from leadline_collector.metrics import CollectorMetrics
from leadline_collector.publisher import SinkUnavailable
from leadline_shared.events import RawEvent

__all__ = ["Sink", "SinkUnavailable", "record_or_count", "store_or_count"]


class Sink(Protocol):
    """Accepts events for the raw topic."""

    async def store(self, event: RawEvent, durable: bool = False) -> None:
        """Accept one event; with ``durable`` return only once it is acknowledged by Kafka or fsync'd."""

    def store_nowait(self, event: RawEvent) -> None:
        """Accept one event without waiting (raises :class:`SinkUnavailable` when the spool is full)."""

    async def is_healthy(self) -> bool:
        """Whether the sink can take events now (drives /readyz)."""


async def store_or_count(sink: Sink, metrics: CollectorMetrics, event: RawEvent) -> bool:
    """Fire-and-forget capture (pixels, clicks, beacons): the visitor is answered either way; a drop is counted."""
    return record_or_count(sink, metrics, event)


def record_or_count(sink: Sink, metrics: CollectorMetrics, event: RawEvent) -> bool:
    """:func:`store_or_count` for callers that cannot await (the fast path answers inside ``data_received``)."""
    try:
        sink.store_nowait(event)
    except SinkUnavailable:
        metrics.dropped.labels(source=event.source).inc()
        return False
    metrics.events.inc(event.type, event.source)
    return True
