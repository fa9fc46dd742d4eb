"""A producer stuck on a broker that is gone can be closed at once; plain ``stop()`` would wait forever.

The collector replaces a producer that fails to deliver (issue 19); that only works if the old one can be let go
without waiting for batches an idempotent producer never expires.
"""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from leadline_localstack import kafka as local_kafka
from leadline_shared import kafka

pytestmark = pytest.mark.integration


async def test_abandon_fails_the_stuck_batches_and_closes_the_producer(
    private_kafka: tuple[Path, int, int], run_id: str
) -> None:
    run_dir, port, controller = private_kafka
    bootstrap = f"127.0.0.1:{port}"
    topics = kafka.Topics.with_prefix(f"abandon-{run_id}.")
    await kafka.ensure_topics(bootstrap, topics, partitions=1)
    producer = kafka.producer(bootstrap, linger_ms=0, request_timeout_ms=1000)
    await producer.start()
    await producer.send_and_wait(topics.raw, b"before")
    await asyncio.to_thread(local_kafka.stop_kafka, run_dir)
    try:
        stuck = await producer.send(topics.raw, b"during")
        await asyncio.sleep(1.5)
        assert not stuck.done(), "an idempotent producer keeps retrying while the broker is gone"
        with pytest.raises(TimeoutError):  # the reason abandon_producer exists
            await asyncio.wait_for(asyncio.shield(producer.flush()), 1.0)
        await asyncio.wait_for(kafka.abandon_producer(producer, timeout=1.0), 5.0)
        assert stuck.done()
        assert isinstance(stuck.exception(), KafkaError)
        assert producer.client._sync_task is None  # its metadata loop is stopped: no reconnect attempts left
    finally:
        await asyncio.to_thread(local_kafka.start_kafka, run_dir, port, controller, heap_mb=256)


async def test_an_abandoned_producer_leaves_no_future_exception_unread() -> None:
    """The enricher abandons its producer with abandon_producer directly (not through BatchSender): the queued
    batch's drained waiter must be read there too. No broker needed: a producer that never connected holds a
    queued batch just the same."""
    loop = asyncio.get_running_loop()
    unread: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: unread.append(context))
    producer = kafka.producer("127.0.0.1:1", linger_ms=0)
    builder = producer.create_batch()
    builder.append(key=b"k", value=b"{}", timestamp=None, headers=[])
    acked = await producer._message_accumulator.add_batch(builder, TopicPartition("t", 0), 1.0)
    acked.add_done_callback(lambda f: f.exception())  # the caller's acknowledgement: read by its owner
    try:
        await kafka.abandon_producer(producer)
        assert acked.done()
        del producer, builder, acked
        for _ in range(3):
            gc.collect()
            await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)
    assert [(c.get("message"), repr(c.get("future"))) for c in unread] == []
