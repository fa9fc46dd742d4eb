"""Consume raw events, resolve identity, produce enriched events: exactly once per Kafka transaction.

Each batch is one transaction: the enriched events, any dead letters and the consumed offsets commit
together, so a crash anywhere in between replays the batch and read_committed readers never see a half.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from leadline_enricher.identity import resolve
from leadline_enricher.metrics import EnricherMetrics
from leadline_shared import kafka
from leadline_shared.events import EnrichedEvent, EventError, RawEvent, utc_now_iso

log = logging.getLogger(__name__)


@dataclass
class Enricher:
    """The consume → resolve → produce loop of one replica."""

    bootstrap: str
    topics: kafka.Topics
    group_id: str
    transactional_id: str
    pool: asyncpg.Pool
    metrics: EnricherMetrics
    batch_max: int = 500
    consumer: AIOKafkaConsumer | None = None
    producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        """Connect the transactional producer and the consumer."""
        self.producer = kafka.producer(self.bootstrap, transactional_id=self.transactional_id)
        await self.producer.start()
        self.consumer = kafka.consumer(
            self.bootstrap, [self.topics.raw], self.group_id, max_poll_records=self.batch_max
        )
        await self.consumer.start()

    async def stop(self) -> None:
        """Leave the group and close the producer (an open transaction is aborted by the broker)."""
        if self.consumer is not None:
            await self.consumer.stop()
        if self.producer is not None:
            await self.producer.stop()

    async def run(self) -> None:
        """Process batches until cancelled."""
        assert self.consumer is not None
        while True:
            batch = await self.consumer.getmany(timeout_ms=500, max_records=self.batch_max)
            if batch:
                await self.process(batch)

    async def process(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """Enrich one batch inside one Kafka transaction."""
        assert self.producer is not None
        started = time.perf_counter()
        out: list[tuple[str, bytes, bytes, list[tuple[str, bytes]] | None]] = []
        async with self.pool.acquire() as conn, conn.transaction():
            for records in batch.values():
                for record in records:
                    out.append(await self._one(conn, record))
        async with self.producer.transaction():
            for topic, key, value, headers in out:
                await self.producer.send(topic, value, key=key, headers=headers)
            offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
            await self.producer.send_offsets_to_transaction(offsets, self.group_id)
        self.metrics.batch_seconds.observe(time.perf_counter() - started)

    async def _one(
        self, conn: asyncpg.Connection, record: ConsumerRecord
    ) -> tuple[str, bytes, bytes, list[tuple[str, bytes]] | None]:
        try:
            raw = RawEvent.from_json(record.value)
        except EventError as exc:
            self.metrics.dead_letters.labels(reason="invalid").inc()
            headers = [
                ("reason", str(exc).encode()[:500]),
                ("stage", b"decode"),
                ("service", b"enricher"),
                ("first_seen", utc_now_iso().encode()),
            ]
            return self.topics.dlq, record.key or b"", record.value or b"", headers
        person_id = await resolve(conn, raw)
        enriched = EnrichedEvent.from_raw(raw, person_id)
        self.metrics.enriched.inc()
        return self.topics.enriched, person_id.encode(), enriched.to_json(), None
