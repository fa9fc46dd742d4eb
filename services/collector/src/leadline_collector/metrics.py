"""The collector's Prometheus metrics, on a registry of the app's own (no process globals)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter


@dataclass(frozen=True)
class CollectorMetrics:
    """Counters the SRE on call reads first."""

    registry: CollectorRegistry
    events: Counter
    dropped: Counter

    @classmethod
    def create(cls) -> CollectorMetrics:
        """A fresh registry with every collector metric."""
        reg = CollectorRegistry()
        return cls(
            registry=reg,
            events=Counter("leadline_collector_events", "Events accepted", ["type", "source"], registry=reg),
            dropped=Counter(
                "leadline_collector_dropped", "Events dropped (sink unavailable)", ["source"], registry=reg
            ),
        )
