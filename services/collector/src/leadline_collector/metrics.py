"""The collector's Prometheus metrics, on a registry of the app's own (no process globals)."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector


class AcceptedEvents(Collector):
    """``leadline_collector_events_total{type,source}``, counted in a plain dict and read at scrape time.

    It is bumped on every request; prometheus-client's counters take a lock per increment, which cost a few
    percent of a pixel request. The event loop is single-threaded, so a dict suffices.
    """

    def __init__(self) -> None:
        self.tally: Tally[tuple[str, str]] = Tally()

    def inc(self, type_: str, source: str, amount: int = 1) -> None:
        """Count accepted events."""
        self.tally[(type_, source)] += amount

    def collect(self) -> Iterator[Metric]:
        """Expose the tally as a Prometheus counter family."""
        family = CounterMetricFamily(
            "leadline_collector_events", "Events accepted", labels=["type", "source"]
        )
        for (type_, source), value in sorted(self.tally.items()):
            family.add_metric([type_, source], value)
        yield family


class FastAnswers(Collector):
    """``leadline_collector_fast_path_answers_total{route}``: requests answered on the fast path, not by aiohttp.

    It tells the SRE (and the tests, and the benchmark) which path the traffic takes; a plain dict, as above.
    """

    def __init__(self) -> None:
        self.tally: Tally[str] = Tally()

    def collect(self) -> Iterator[Metric]:
        """Expose the tally as a Prometheus counter family."""
        family = CounterMetricFamily(
            "leadline_collector_fast_path_answers", "Requests answered on the fast path", labels=["route"]
        )
        for route, value in sorted(self.tally.items()):
            family.add_metric([route], value)
        yield family


@dataclass(frozen=True)
class CollectorMetrics:
    """What the SRE on call reads first: accepted, published, spooled, dropped, rejected."""

    registry: CollectorRegistry
    events: AcceptedEvents
    fast_answers: FastAnswers
    published: Counter
    spooled: Counter
    replayed: Counter
    dropped: Counter
    rejected: Counter
    spool_bytes: Gauge
    spool_records: Gauge
    spool_oldest_age: Gauge
    kafka_up: Gauge
    kafka_reachable: Gauge
    producer_replaced: Counter
    recovery_errors: Counter
    backlog: Gauge
    held: Counter
    worker: Gauge
    batch_records: Counter
    batch_record_events: Counter

    @classmethod
    def create(cls) -> CollectorMetrics:
        """A fresh registry with every collector metric."""
        reg = CollectorRegistry()
        events, fast_answers = AcceptedEvents(), FastAnswers()
        reg.register(events)
        reg.register(fast_answers)
        return cls(
            registry=reg,
            events=events,
            fast_answers=fast_answers,
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
            spool_records=Gauge(
                "leadline_collector_spool_records", "Events waiting in the spool for Kafka", registry=reg
            ),
            spool_oldest_age=Gauge(
                "leadline_collector_spool_oldest_age_seconds",
                "Age of the oldest spool segment still waiting (0 when the spool is empty)",
                registry=reg,
            ),
            kafka_up=Gauge("leadline_collector_kafka_up", "1 when events go straight to Kafka", registry=reg),
            kafka_reachable=Gauge(
                "leadline_collector_kafka_reachable",
                "1 when the last connection or delivery attempt reached the broker",
                registry=reg,
            ),
            producer_replaced=Counter(
                "leadline_collector_producer_replaced",
                "Kafka producers closed and replaced after failing to deliver",
                registry=reg,
            ),
            recovery_errors=Counter(
                "leadline_collector_recovery_errors",
                "Spool recovery attempts that failed with an unexpected error (retried with back-off)",
                ["error"],
                registry=reg,
            ),
            backlog=Gauge(
                "leadline_collector_backlog_events",
                "Records accepted and not yet handed to Kafka or the spool (an event, or a whole beacon or Segment batch)",
                registry=reg,
            ),
            held=Counter(
                "leadline_collector_answers_held",
                "Answers (beacons) held until the backlog in front of Kafka shrank (Publisher.throttle)",
                registry=reg,
            ),
            batch_records=Counter(
                "leadline_collector_batch_records",
                "Segment batches and beacons stored whole, one record each, for the enricher to split into events",
                registry=reg,
            ),
            batch_record_events=Counter(
                "leadline_collector_batch_record_events",
                "Events the stored Segment batch and beacon records carry (accepted, split by the enricher)",
                registry=reg,
            ),
            worker=Gauge(
                "leadline_collector_worker",
                "1, labelled with the worker index and pid of the process that answered this scrape"
                " (with --workers N each worker has its own metrics; see docs/operations.md, Scaling)",
                ["index", "pid"],
                registry=reg,
            ),
        )
