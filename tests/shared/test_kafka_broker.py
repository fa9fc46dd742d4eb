"""The real broker does what the design relies on: idempotent produce and transactional consume→produce→commit."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer

from leadline_shared import kafka
from support import read_topic, topic_is_quiet

pytestmark = pytest.mark.integration


async def test_idempotent_producer_delivers_in_order_per_key(
    kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    producer = kafka.producer(kafka_bootstrap)
    await producer.start()
    try:
        for i in range(50):
            await producer.send(topics.raw, str(i).encode(), key=b"visitor-1")
        await producer.flush()
    finally:
        await producer.stop()
    got = await read_topic(kafka_bootstrap, topics.raw, 50)
    assert [int(v) for _, v, _ in got] == list(range(50))


async def test_transactional_loop_commits_output_and_offsets_together(
    kafka_bootstrap: str, topics: kafka.Topics, run_id: str
) -> None:
    """Exactly-once in effect: a committed batch shows up once, an aborted one never, and offsets follow."""
    seed = kafka.producer(kafka_bootstrap)
    await seed.start()
    for i in range(10):
        await seed.send(topics.raw, f"m{i}".encode(), key=f"k{i}".encode())
    await seed.stop()

    group = f"g-{run_id}"
    tx = kafka.producer(kafka_bootstrap, transactional_id=f"tx-{run_id}")
    await tx.start()
    consumer = kafka.consumer(kafka_bootstrap, [topics.raw], group)
    await consumer.start()
    try:
        batch = {}
        while sum(len(v) for v in batch.values()) < 10:
            for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                batch.setdefault(tp, []).extend(records)
        # An aborted attempt: output invisible to read_committed readers, offsets not moved.
        await tx.begin_transaction()
        await tx.send(topics.enriched, b"aborted")
        await tx.abort_transaction()
        async with tx.transaction():
            for records in batch.values():
                for r in records:
                    await tx.send(topics.enriched, r.value.upper(), key=r.key)
            offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
            await tx.send_offsets_to_transaction(offsets, group)
    finally:
        await consumer.stop()
        await tx.stop()

    out = await read_topic(kafka_bootstrap, topics.enriched, 10)
    assert sorted(v for _, v, _ in out) == sorted(f"M{i}".encode() for i in range(10))
    assert await topic_is_quiet(kafka_bootstrap, topics.enriched, 10, wait=0.5) == 10

    again = AIOKafkaConsumer(
        topics.raw,
        bootstrap_servers=kafka_bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await again.start()
    try:
        assert await again.getmany(timeout_ms=1500) == {}
    finally:
        await again.stop()
