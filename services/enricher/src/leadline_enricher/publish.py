"""Producing a whole batch of messages at once, inside the producer's open transaction.

aiokafka's ``send()`` costs 10 to 12 µs of CPU per message (infra-notes); filling record batches ourselves and
handing them over with ``send_batch()`` costs about a third of that, which matters at 20k events/s. Keys are
partitioned with Kafka's default murmur2 partitioner, so a key lands where a Java producer would put it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

Message = tuple[str, bytes, bytes, list[tuple[str, bytes]] | None]  # topic, key, value, headers


class BatchPublisher:
    """Groups messages by partition into record batches and submits them."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self._partitions: dict[str, int] = {}
        self._slots: dict[bytes, int] = {}

    async def publish(self, messages: list[Message]) -> None:
        """Queue every message in the current transaction and wait until the broker has them all."""
        builders: dict[tuple[str, int], Any] = {}
        futures: list[asyncio.Future[Any]] = []
        for topic, key, value, headers in messages:
            partition = await self._partition(topic, key)
            tp = (topic, partition)
            builder = builders.get(tp)
            if builder is None:
                builder = builders[tp] = self.producer.create_batch()
            if builder.append(timestamp=None, key=key, value=value, headers=headers or []) is None:
                futures.append(await self.producer.send_batch(builder, topic, partition=partition))
                builder = builders[tp] = self.producer.create_batch()
                builder.append(timestamp=None, key=key, value=value, headers=headers or [])
        for (topic, partition), builder in builders.items():
            futures.append(await self.producer.send_batch(builder, topic, partition=partition))
        await asyncio.gather(*futures)

    async def _partition(self, topic: str, key: bytes) -> int:
        count = self._partitions.get(topic)
        if count is None:
            count = self._partitions[topic] = len(await self.producer.partitions_for(topic))
        slot = self._slots.get(key)
        if slot is None:
            if len(self._slots) > 100_000:
                self._slots.clear()
            slot = self._slots[key] = murmur2(key) & 0x7FFFFFFF
        return slot % count
