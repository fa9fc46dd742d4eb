"""Replacing a failed Kafka producer leaves no future unread (the Kafka-down drill logged "Future exception was
never retrieved" once, docs/reliability.md).

aiokafka fails a batch still queued for its partition twice when the producer is abandoned: its acknowledgement,
which the publisher reads, and its "drained" waiter, which only a later batch for the same partition would have
awaited. No broker is needed to show it: a producer that never connected holds a queued batch just the same.
"""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path
from typing import Any

from aiokafka.structs import TopicPartition

from leadline_collector.metrics import CollectorMetrics
from leadline_collector.publisher import Publisher, _unavailable_on_error
from leadline_collector.spool import Spool
from leadline_shared import kafka
from leadline_shared.batch import BatchSender

TOPIC = "capture.raw.v1"


async def test_a_replaced_producer_leaves_no_future_exception_unread(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    unread: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: unread.append(context))
    publisher = Publisher("127.0.0.1:1", TOPIC, Spool(tmp_path / "spool", 1 << 20), CollectorMetrics.create())
    producer = kafka.producer("127.0.0.1:1", linger_ms=0)
    builder = producer.create_batch()
    builder.append(key=b"visitor", value=b"{}", timestamp=None, headers=[])
    acknowledged = await producer._message_accumulator.add_batch(builder, TopicPartition(TOPIC, 0), 1.0)
    acknowledged.add_done_callback(lambda f: f.exception())  # what BatchSender.hand_over does with it
    publisher._producer, publisher._sender = producer, BatchSender(producer, raw_topic=TOPIC)
    try:
        await publisher._replace_producer("a test")
        assert acknowledged.done()
        del producer, builder, acknowledged
        for _ in range(3):  # the failed batch, and its futures, are freed with the producer
            gc.collect()
            await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)
        await publisher.spool.close()
    assert [(c.get("message"), repr(c.get("future"))) for c in unread] == []


async def test_a_failed_spool_write_whose_caller_left_is_still_read() -> None:
    """A form's handler that stopped waiting (its client went away) cancels its view of the spool write; the
    write itself may still fail afterwards, and its failure must not go unread either."""
    loop = asyncio.get_running_loop()
    unread: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: unread.append(context))
    try:
        write: asyncio.Future[None] = loop.create_future()
        seen = _unavailable_on_error(write)
        seen.cancel()
        write.set_exception(OSError(28, "No space left on device"))
        await asyncio.sleep(0)
        del write, seen
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)
    assert [(c.get("message"), repr(c.get("future"))) for c in unread] == []
