"""Helpers the tests share: reading what really arrived on a topic."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer


async def read_topic(
    bootstrap: str, topic: str, count: int, timeout: float = 20.0, isolation_level: str = "read_committed"
) -> list[tuple[bytes | None, bytes, dict[str, bytes]]]:
    """Read ``count`` messages from the start of ``topic`` (fails the test after ``timeout``)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        isolation_level=isolation_level,
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    out: list[tuple[bytes | None, bytes, dict[str, bytes]]] = []
    try:
        async with asyncio.timeout(timeout):
            while len(out) < count:
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    out.extend((r.key, r.value, dict(r.headers)) for r in records)
    except TimeoutError:
        pytest.fail(f"only {len(out)} of {count} messages arrived on {topic} within {timeout}s")
    finally:
        await consumer.stop()
    return out


async def topic_is_quiet(bootstrap: str, topic: str, expected: int, wait: float = 2.0) -> int:
    """How many messages ``topic`` holds after waiting ``wait`` seconds (to prove nothing more arrives)."""
    await asyncio.sleep(wait)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    total = 0
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=1000)
            if not batch:
                break
            total += sum(len(r) for r in batch.values())
    finally:
        await consumer.stop()
    return total
