"""The one batch sender puts raw-topic keys where every raw producer does, and other keys where Kafka would."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.partitioner import murmur2

from leadline_shared import kafka
from leadline_shared.batch import BatchPublisher

pytestmark = pytest.mark.integration


async def partitions_of(bootstrap: str, topic: str, count: int) -> dict[bytes, int]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    seen: dict[bytes, int] = {}
    try:
        async with asyncio.timeout(20):
            while len(seen) < count:
                for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                    seen.update({r.key: tp.partition for r in records if r.key is not None})
    finally:
        await consumer.stop()
    return seen


async def test_raw_keys_use_the_raw_partitioner_and_other_topics_murmur2(
    kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    keys = [f"visitor-{i}".encode() for i in range(12)]
    producer = kafka.producer(kafka_bootstrap)
    await producer.start()
    try:
        publisher = BatchPublisher(producer, topics.raw)
        await publisher.publish([(t, k, b"{}", None) for k in keys for t in (topics.raw, topics.enriched)])
        count = len(await producer.partitions_for(topics.raw))
    finally:
        await producer.stop()
    raw = await partitions_of(kafka_bootstrap, topics.raw, len(keys))
    enriched = await partitions_of(kafka_bootstrap, topics.enriched, len(keys))
    assert raw == {k: kafka.partition_for(k, count) for k in keys}
    assert enriched == {k: (murmur2(k) & 0x7FFFFFFF) % count for k in keys}
    assert raw != enriched  # the two rules differ, so the test can tell them apart
