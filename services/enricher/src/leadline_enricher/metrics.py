"""The enricher's Prometheus metrics, on a registry of its own."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram


@dataclass(frozen=True)
class EnricherMetrics:
    """Throughput, dead letters and batch latency."""

    registry: CollectorRegistry
    enriched: Counter
    dead_letters: Counter
    batch_seconds: Histogram
    identifiers_skipped: Counter
    conflicts: Counter
    identity_changes: Counter
    retries: Counter
    kafka_retries: Counter
    split_records: Counter
    split_events: Counter

    @classmethod
    def create(cls) -> EnricherMetrics:
        """A fresh registry with every enricher metric."""
        reg = CollectorRegistry()
        return cls(
            registry=reg,
            enriched=Counter("leadline_enricher_events", "Events enriched", registry=reg),
            dead_letters=Counter(
                "leadline_enricher_dead_letters", "Events sent to the DLQ", ["reason"], registry=reg
            ),
            batch_seconds=Histogram(
                "leadline_enricher_batch_seconds", "Time to process one batch", registry=reg
            ),
            identifiers_skipped=Counter(
                "leadline_enricher_identifiers_skipped",
                "Identifiers not attached because the person reached the limit for that type",
                ["type"],
                registry=reg,
            ),
            conflicts=Counter(
                "leadline_enricher_identity_conflicts",
                "Events whose persons each hold a different email or user_id (recorded, not merged)",
                registry=reg,
            ),
            identity_changes=Counter(
                "leadline_enricher_identity_changes", "Identity changes published", ["kind"], registry=reg
            ),
            retries=Counter(
                "leadline_enricher_batch_retries",
                "Batches retried because PostgreSQL was unreachable",
                registry=reg,
            ),
            kafka_retries=Counter(
                "leadline_enricher_kafka_retries",
                "Batches aborted and replayed because Kafka failed them (broker gone or back, leader unknown)",
                registry=reg,
            ),
            split_records=Counter(
                "leadline_enricher_split_records",
                "Segment batch and beacon records split into their events (docs/proposals/batch-records.md)",
                registry=reg,
            ),
            split_events=Counter(
                "leadline_enricher_split_events",
                "Events made by splitting Segment batch and beacon records, published back to capture.raw.v1",
                registry=reg,
            ),
        )
