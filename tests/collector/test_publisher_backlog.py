"""Captures whose answers do not wait for their events (the snippet's ``/e``) wait once the publisher is behind.

/e used to be answered as fast as the collector could parse it, whatever Kafka took: under load the queue in
front of Kafka grew without bound (answered faster than published, in memory only). Now, above
``BACKLOG_HIGH`` queued events, a beacon's answer waits until the backlog is down to ``BACKLOG_LOW``: clients send
no faster than Kafka takes their events. A Segment batch's events share one waiter, settled a batch at a time.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from collector.memory_sink import MemorySink
from collector.test_fastpath import connect, read_response
from collector.test_fastpath_posts import MakeClient, post
from leadline_collector import publisher as publisher_module
from leadline_collector.fastpath import FAST_PATH
from leadline_collector.metrics import CollectorMetrics
from leadline_collector.publisher import BACKLOG_HIGH, BACKLOG_LOW, Publisher, _settle
from leadline_collector.spool import Spool
from leadline_shared import kafka
from leadline_shared.events import EncodedEvent, encode_raw
from support import metric, read_events

BEACON = orjson.dumps(
    {"batch": [{"type": "track", "id": "0192f0c4-5b7a-7cc0-8d5e-000000000201", "name": "clicked"}]}
)


def beacon_events(start: int, count: int) -> list[EncodedEvent]:
    """A beacon's events, ``e{start}`` onwards, from fifty visitors."""
    return [
        encode_raw(
            f"e{n}", "track", "beacon", "2026-11-30T18:00:00.000Z", None, None, f"v{n % 50}", {}, {}, {}
        )
        for n in range(start, start + count)
    ]


def queue_beacons(publisher: Publisher, total: int) -> None:
    """``total`` events queued as beacons of 20 arriving faster than the flush loop runs (no await between)."""
    for start in range(0, total, 20):
        publisher.store_all_nowait(beacon_events(start, 20))


async def published_ids(bootstrap: str, topic: str, count: int, timeout: float = 20.0) -> list[str]:
    """The event ids of the first ``count`` events on the topic (a beacon's record standing for its events, as
    the enricher splits it), sorted (a copy would show twice)."""
    return sorted(
        orjson.loads(value)["event_id"] for _, value, _ in await read_events(bootstrap, topic, count, timeout)
    )


@pytest.mark.parametrize("fast_path", ["true", "false"])
async def test_a_beacon_is_answered_once_the_sink_has_caught_up(
    make_memory_client: MakeClient, memory_sink: MemorySink, fast_path: str
) -> None:
    """Both paths take the beacon's events at once and hold its answer until the sink's backlog has room."""
    client = await make_memory_client(LEADLINE_COLLECTOR_FAST_PATH=fast_path)
    room: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    memory_sink.backlog = room
    reader, writer = await connect(client)
    writer.write(post("/ll/e", BEACON, "Content-Type: text/plain"))
    answer = asyncio.ensure_future(read_response(reader))
    await asyncio.sleep(0.3)
    assert not answer.done()
    assert [e.event_id for e in memory_sink.events] == ["0192f0c4-5b7a-7cc0-8d5e-000000000201"]
    memory_sink.backlog = None
    room.set_result(None)
    status, headers, body = await asyncio.wait_for(answer, 5)
    writer.close()
    assert (status, orjson.loads(body)) == (200, {"accepted": 1, "rejected": 0})
    fast = client.app.get(FAST_PATH)
    lean = fast.metrics.fast_answers.tally.get("beacon", 0) if fast is not None else 0
    assert ("server" not in headers, lean) == ((True, 1) if fast_path == "true" else (False, 0))


async def test_a_backlog_over_the_high_mark_waits_until_kafka_has_taken_it(
    kafka_bootstrap: str, topics: kafka.Topics, tmp_path: Path
) -> None:
    """Thousands of beacon events queued at once: the publisher asks callers to wait, lets them go once it has
    handed the backlog down to the low mark, and every event reaches the topic once."""
    publisher = Publisher(
        kafka_bootstrap, topics.raw, Spool(tmp_path / "spool", 1 << 26), CollectorMetrics.create()
    )
    await publisher.start()
    total = BACKLOG_HIGH + 2_000
    try:
        assert publisher.throttle() is None
        queue_beacons(publisher, total)
        room = publisher.throttle()
        assert room is not None
        assert publisher.throttle() is room  # one future, shared by every waiting caller
        assert publisher.metrics.held._value.get() == 2  # the SRE sees answers held
        await asyncio.wait_for(asyncio.shield(room), 30)
        assert publisher.throttle() is None
        assert len(publisher._pending) + publisher._sending <= BACKLOG_LOW
    finally:
        await publisher.stop()
    assert await published_ids(kafka_bootstrap, topics.raw, total) == sorted(f"e{n}" for n in range(total))


async def test_a_batch_call_is_answered_when_its_last_event_is_settled_or_at_its_first_failure(
    tmp_path: Path,
) -> None:
    """The events of one durable call share a waiter: settled a Kafka batch at a time, in whatever order the
    partitions answer, the call resolves only with its last event; a failure fails it at once."""
    publisher = Publisher("127.0.0.1:1", "raw", Spool(tmp_path / "spool", 1 << 20), CollectorMetrics.create())
    events = [
        encode_raw(f"e{n}", "track", "segment", "2026-11-30T18:00:00.000Z", None, None, f"v{n}", {}, {}, {})
        for n in range(5)
    ]
    call = publisher.store_durable(events)
    first, second = publisher._pending[:2], publisher._pending[2:]
    _settle(second, None)
    assert not call.done()
    _settle(first, None)
    assert call.done()
    assert call.result() is None
    failing = publisher.store_durable(events)
    items = publisher._pending[5:]
    _settle(items[:1], RuntimeError("kafka rejected a batch"))
    assert failing.done()
    assert isinstance(failing.exception(), RuntimeError)
    _settle(items[1:], None)  # the rest succeeding later changes nothing
    assert isinstance(failing.exception(), RuntimeError)


async def test_stopping_while_a_backlog_is_handed_over_loses_nothing(
    kafka_bootstrap: str, topics: kafka.Topics, tmp_path: Path
) -> None:
    """SIGTERM under load: the flush loop is cancelled halfway through a backlog. The batches it had not handed
    over yet went with it (a test queued 7,000 events and found 4,516 on the topic); now they go back to the
    queue and stop() sends them."""
    publisher = Publisher(
        kafka_bootstrap, topics.raw, Spool(tmp_path / "spool", 1 << 26), CollectorMetrics.create()
    )
    await publisher.start()
    total = 30_000
    queue_beacons(publisher, total)
    while publisher._pending:  # until the flush loop has taken the backlog: it is handing it over now
        await asyncio.sleep(0)
    await publisher.stop()
    assert await published_ids(kafka_bootstrap, topics.raw, total) == sorted(f"e{n}" for n in range(total))


async def test_beacons_sent_faster_than_kafka_takes_them_are_held_and_every_event_is_published_once(
    make_client: MakeClient, topics: kafka.Topics, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole way, under load: 40 connections pipelining 10 beacons of 25 events each (10,000 events in flight)
    into a collector on the real broker, whose backlog mark is lowered so the load outruns it. Every beacon is
    answered (in order on its connection), some answers were held, and every event reaches the topic once."""
    monkeypatch.setattr(
        publisher_module, "BACKLOG_HIGH", 16
    )  # Kafka records: a beacon is one (its 25 events)
    monkeypatch.setattr(publisher_module, "BACKLOG_LOW", 8)
    client = await make_client()
    connections, beacons, items = 40, 10, 25

    def beacon(conn: int, n: int) -> bytes:
        first = (conn * beacons + n) * items
        batch = [
            {
                "type": "track",
                "id": str(uuid.UUID(int=first + i)),
                "name": "clicked",
                "url": "https://shop.example/",
            }
            for i in range(items)
        ]
        return post("/ll/e", orjson.dumps({"batch": batch}), "Content-Type: text/plain")

    async def load(conn: int) -> list[tuple[int, Any]]:
        reader, writer = await connect(client)
        writer.write(b"".join(beacon(conn, n) for n in range(beacons)))
        answers = [await read_response(reader) for _ in range(beacons)]
        writer.close()
        return [(status, orjson.loads(body)) for status, _, body in answers]

    answered = await asyncio.gather(*(load(conn) for conn in range(connections)))
    assert {a for answers in answered for a in map(str, answers)} == {
        str((200, {"accepted": 25, "rejected": 0}))
    }
    assert await metric(client, "leadline_collector_answers_held_total") > 0
    total = connections * beacons * items
    ids = await published_ids(kafka_bootstrap, topics.raw, total, 60)
    assert ids == sorted(str(uuid.UUID(int=n)) for n in range(total))
