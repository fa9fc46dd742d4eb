"""The collector's Prometheus metrics, on a registry of the app's own (no process globals)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge


@dataclass(frozen=True)
class CollectorMetrics:
    """What the SRE on call reads first: accepted, published, spooled, dropped, rejected."""

    registry: CollectorRegistry
    events: Counter
    published: Counter
    spooled: Counter
    replayed: Counter
    dropped: Counter
    rejected: Counter
    spool_bytes: Gauge
    kafka_up: Gauge
    _children: dict[tuple[str, str], Any] = field(default_factory=dict)

    def accepted(self, type_: str, source: str) -> Any:
        """The events counter's child for (type, source), looked up once: ``labels()`` is slow per request."""
        child = self._children.get((type_, source))
        if child is None:
            child = self._children[(type_, source)] = self.events.labels(type=type_, source=source)
        return child

    @classmethod
    def create(cls) -> CollectorMetrics:
        """A fresh registry with every collector metric."""
        reg = CollectorRegistry()
        return cls(
            registry=reg,
            events=Counter("leadline_collector_events", "Events accepted", ["type", "source"], registry=reg),
            published=Counter("leadline_collector_published", "Events acknowledged by Kafka", registry=reg),
            spooled=Counter("leadline_collector_spooled", "Events written to the disk spool", registry=reg),
            replayed=Counter(
                "leadline_collector_replayed", "Spooled events published to Kafka", registry=reg
            ),
            dropped=Counter(
                "leadline_collector_dropped", "Events dropped (spool full)", ["source"], registry=reg
            ),
            rejected=Counter(
                "leadline_collector_rejected", "Requests refused", ["endpoint", "reason"], registry=reg
            ),
            spool_bytes=Gauge("leadline_collector_spool_bytes", "Bytes waiting in the spool", registry=reg),
            kafka_up=Gauge("leadline_collector_kafka_up", "1 when events go straight to Kafka", registry=reg),
        )
