"""Helpers the tests share: reading what really arrived on a topic."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import pytest
from aiohttp.test_utils import TestClient
from aiokafka import AIOKafkaConsumer

from leadline_shared import kafka
from leadline_shared.capture import batches
from leadline_shared.events import RawEvent

Message = tuple[bytes | None, bytes, dict[str, bytes]]


async def produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    """Write ``(key, value)`` messages to ``topic``, in order, and wait until the broker has them."""
    producer = kafka.producer(bootstrap)
    await producer.start()
    try:
        for key, value in messages:
            await producer.send(topic, value, key=key)
    finally:
        await producer.stop()


async def read_topic(
    bootstrap: str, topic: str, count: int, timeout: float = 20.0, isolation_level: str = "read_committed"
) -> list[Message]:
    """Read ``count`` messages from the start of ``topic`` (fails the test after ``timeout``)."""
    return await _read(bootstrap, topic, count, timeout, isolation_level, lambda m: [m], "messages")


async def read_events(bootstrap: str, topic: str, count: int, timeout: float = 20.0) -> list[Message]:
    """:func:`read_topic` for capture.raw.v1 as the enricher sees it once it split the Segment batch and beacon
    records: each record stands for its events (:func:`leadline_shared.capture.batches.split`, what the enricher
    publishes), read until ``count`` events are there."""
    return await _read(bootstrap, topic, count, timeout, "read_committed", _events_of, "events")


async def _read(
    bootstrap: str,
    topic: str,
    count: int,
    timeout: float,
    isolation_level: str,
    expand: Callable[[Message], list[Message]],
    what: str,
) -> list[Message]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        isolation_level=isolation_level,
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    out: list[Message] = []
    try:
        async with asyncio.timeout(timeout):
            while len(out) < count:
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    for r in records:
                        out.extend(expand((r.key, r.value, dict(r.headers))))
    except TimeoutError:
        pytest.fail(f"only {len(out)} of {count} {what} arrived on {topic} within {timeout}s")
    finally:
        await consumer.stop()
    return out


def _events_of(message: Message) -> list[Message]:
    raw = RawEvent.from_json(message[1])
    if raw.type not in batches.TYPES:
        return [message]
    return [(event.wire_key, event.wire_value, {}) for event in batches.split(raw)]


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


async def metric(client: TestClient, name: str) -> float:
    """The current value of an unlabelled metric (0 when absent)."""
    text = await (await client.get("/metrics")).text()
    match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def wait_for_metric(
    client: TestClient, name: str, value: float, *, exact: bool = False, timeout: float = 20.0
) -> None:
    """Wait until the metric reaches ``value`` (or equals it, with ``exact``); fail the test on timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    current = await metric(client, name)
    while loop.time() < deadline:
        current = await metric(client, name)
        if (current == value) if exact else (current >= value):
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"{name} is {current}, expected {'' if exact else '≥ '}{value} within {timeout}s")
