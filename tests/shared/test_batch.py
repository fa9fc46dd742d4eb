"""The one batch sender puts raw-topic keys where every raw producer does, and other keys where Kafka would."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.partitioner import murmur2
from aiokafka.record.default_records import DefaultRecordBatch

from leadline_shared import kafka
from leadline_shared.batch import BatchSender

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
        publisher = BatchSender(producer, topics.raw)
        await publisher.publish([(t, k, b"{}", None) for k in keys for t in (topics.raw, topics.enriched)])
        count = len(await producer.partitions_for(topics.raw))
    finally:
        await producer.stop()
    raw = await partitions_of(kafka_bootstrap, topics.raw, len(keys))
    enriched = await partitions_of(kafka_bootstrap, topics.enriched, len(keys))
    assert raw == {k: kafka.partition_for(k, count) for k in keys}
    assert enriched == {k: (murmur2(k) & 0x7FFFFFFF) % count for k in keys}
    assert raw != enriched  # the two rules differ, so the test can tell them apart


async def test_each_message_gets_its_acknowledgement_and_an_oversized_one_fails_alone(
    kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    """crm-core's outbox finds the row Kafka refused by its acknowledgement: one per message, in order, and a
    message larger than the producer may send fails at once without taking its batch-mates with it."""
    messages = [
        (topics.enriched, b"a", b"{}", None),
        (topics.enriched, b"huge", b"y" * 1_100_000, None),
        (topics.raw, b"b", b"{}", [("reason", b"x")]),
    ]
    producer = kafka.producer(kafka_bootstrap)
    await producer.start()
    try:
        acks = await BatchSender(producer, topics.raw).send(messages)
        results = await asyncio.gather(*acks, return_exceptions=True)
    finally:
        await producer.stop()
    assert len(results) == 3
    assert not isinstance(results[0], BaseException)
    assert isinstance(results[1], MessageSizeTooLargeError)
    assert not isinstance(results[2], BaseException)


async def test_filling_batches_before_the_partitions_are_known_is_a_clear_error() -> None:
    """A state start-up creates is not guarded by an assert (gone under python -O): the error names the call."""
    sender = BatchSender(kafka.producer("127.0.0.1:1"), "raw")
    with pytest.raises(RuntimeError, match=r"partitions\('raw'\)"):
        sender.batches("raw", [b"k"], key=bytes, value=bytes)


async def test_filled_batches_hold_what_aiokafkas_own_append_would_put_in_them() -> None:
    """BatchSender.batches appends to aiokafka's record batch directly (its Python wrapper cost more than the
    record): every batch must still hold the records, offsets and count the public ``BatchBuilder.append`` gives,
    including when a batch fills up and the next one takes over. An aiokafka upgrade that changes either side
    fails here."""
    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1", max_batch_size=4096)  # several fill up
    sender = BatchSender(producer, raw_topic="raw")
    sender._partitions["raw"] = 3
    items = [(f"visitor-{n % 7}".encode(), b"v" * (100 + n)) for n in range(120)]
    try:
        filled = sender.batches("raw", items, lambda i: i[0], lambda i: i[1])
        expected: dict[int, list[list[tuple[bytes, bytes]]]] = {}
        for key, value in items:
            partition = kafka.partition_for(key, 3)
            own = expected.setdefault(partition, [[]])
            builder = producer.create_batch()
            for k, v in own[-1]:
                assert builder.append(key=k, value=v, timestamp=None) is not None
            if builder.append(key=key, value=value, timestamp=None) is None:
                own.append([])
            own[-1].append((key, value))
    finally:
        await producer.stop()
    got: dict[int, list[list[tuple[int, bytes, bytes]]]] = {}
    for batch in filled:
        assert batch.builder.record_count() == len(batch.items)
        records = list(DefaultRecordBatch(bytes(batch.builder._build())))
        got.setdefault(batch.partition, []).append([(r.offset, r.key, r.value) for r in records])
        assert [(k, v) for _, k, v in got[batch.partition][-1]] == list(batch.items)
    assert got == {
        p: [[(n, k, v) for n, (k, v) in enumerate(batch)] for batch in batches]
        for p, batches in expected.items()
    }
    assert max(len(batches) for batches in got.values()) > 1  # the test did fill batches up
