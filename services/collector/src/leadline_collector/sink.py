"""The interface routes publish through; they never see Kafka or the spool (see :mod:`publisher`)."""

from __future__ import annotations

from typing import Protocol

from leadline_collector.metrics import CollectorMetrics
from leadline_collector.publisher import SinkUnavailable
from leadline_shared.events import RawEvent

__all__ = ["Sink", "SinkUnavailable", "store_or_count"]


class Sink(Protocol):
    """Accepts events for the raw topic."""

    async def store(self, event: RawEvent, durable: bool = False) -> None:
        """Accept one event; with ``durable`` return only once it is acknowledged by Kafka or fsync'd."""

    async def is_healthy(self) -> bool:
        """Whether the sink can take events now (drives /readyz)."""


async def store_or_count(sink: Sink, metrics: CollectorMetrics, event: RawEvent) -> bool:
    """Fire-and-forget capture (pixels, clicks, beacons): the visitor is answered either way; a drop is counted."""
    try:
        await sink.store(event)
    except SinkUnavailable:
        metrics.dropped.labels(source=event.source).inc()
        return False
    metrics.events.inc(event.type, event.source)
    return True
