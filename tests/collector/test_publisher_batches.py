"""A beacon's events enter the publisher in one go (Publisher.store_all_nowait): in order, whether they go to
Kafka or, while Kafka is away, to the spool (counted as spooled), as the same events stored one by one would."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, cast

from leadline_collector.metrics import CollectorMetrics
from leadline_collector.publisher import Publisher, in_rounds
from leadline_collector.spool import Spool
from leadline_shared.batch import Batch
from leadline_shared.events import RawEvent
from leadline_shared.service import cancel_and_wait

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


def test_a_backlog_is_handed_to_kafka_a_batch_of_every_partition_at_a_time() -> None:
    """aiokafka takes a partition's next batch only once its previous one is sent: a backlog's batches go over in
    rounds (one of every partition per produce request), each partition's still in the order they were filled."""
    filled = [
        Batch(TOPIC, p, None, [(f"{p}-{n}", b"", b"", None)])
        for p, n in ((0, 0), (0, 1), (0, 2), (1, 0), (2, 0), (2, 1))
    ]
    handed = [batch.items[0][0] for batch in in_rounds(filled)]
    assert handed == ["0-0", "1-0", "2-0", "0-1", "2-1", "0-2"]
    one_each = filled[2:5]
    assert in_rounds(one_each) == one_each


async def test_a_call_waiting_for_its_answer_is_sent_at_once_and_a_pixel_lingers(tmp_path: Path) -> None:
    """A Segment call or a form is answered once Kafka has its events: the flush after an idle moment does not
    wait ``linger`` for more events then (it did: 2 ms added to every answer); pixels and beacons still linger."""
    publisher = Publisher(
        "127.0.0.1:1", TOPIC, Spool(tmp_path / "spool", 1 << 20), CollectorMetrics.create(), linger=0.5
    )
    sent: list[tuple[float, list[str]]] = []

    async def send(items: list[Any]) -> None:
        sent.append((time.monotonic(), [item[0] for item in items]))

    publisher._producer = cast(Any, object())  # a producer is there: the loop sends instead of spooling
    publisher._send = send  # type: ignore[method-assign]
    loop = asyncio.create_task(publisher._flush_loop())
    try:
        start = time.monotonic()
        publisher.store_durable(events(2))
        await asyncio.sleep(0.1)
        assert [(ids, at - start < 0.1) for at, ids in sent] == [(["e0", "e1"], True)]
        start = time.monotonic()
        publisher.store_nowait(events(1)[0])
        await asyncio.sleep(0.1)
        assert len(sent) == 1  # the pixel waits for company
        await asyncio.sleep(0.6)
        assert [ids for _, ids in sent] == [["e0", "e1"], ["e0"]]
        assert sent[1][0] - start >= 0.5
    finally:
        await cancel_and_wait(loop)
