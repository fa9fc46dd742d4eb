"""A beacon's events enter the publisher in one go (Publisher.store_all_nowait): in order, whether they go to
Kafka or, while Kafka is away, to the spool (counted as spooled), as the same events stored one by one would."""

from __future__ import annotations

from pathlib import Path

from leadline_collector.metrics import CollectorMetrics
from leadline_collector.publisher import Publisher
from leadline_collector.spool import Spool
from leadline_shared.events import RawEvent

TOPIC = "capture.raw.v1"


def events(count: int) -> list[RawEvent]:
    return [
        RawEvent(
            event_id=f"e{n}",
            type="track",
            source="beacon",
            received_at="2026-11-30T18:00:00.000Z",
            anon_id="v",
        )
        for n in range(count)
    ]


async def test_events_stored_in_one_go_are_queued_for_kafka_in_order(tmp_path: Path) -> None:
    publisher = Publisher("127.0.0.1:1", TOPIC, Spool(tmp_path / "spool", 1 << 20), CollectorMetrics.create())
    publisher.store_nowait(events(1)[0])
    publisher.store_all_nowait(events(3))
    assert [item[0] for item in publisher._pending] == ["e0", "e0", "e1", "e2"]
    assert [item[2] for item in publisher._pending[1:]] == [e.to_json() for e in events(3)]
    assert publisher._wake.is_set()


async def test_events_stored_in_one_go_while_spooling_are_spooled_and_counted(tmp_path: Path) -> None:
    metrics = CollectorMetrics.create()
    spool = Spool(tmp_path / "spool", 1 << 20)
    spool.open()
    publisher = Publisher("127.0.0.1:1", TOPIC, spool, metrics)
    publisher._spooling = True
    try:
        publisher.store_all_nowait(events(3))
        publisher.store_all_nowait([])
        await spool.seal()
        records = [record for segment in spool.sealed() for _, record in spool.read(segment)]
    finally:
        await spool.close()
    assert [r.event_id for r in records] == ["e0", "e1", "e2"]
    assert metrics.spooled._value.get() == 3
    assert publisher._pending == []
