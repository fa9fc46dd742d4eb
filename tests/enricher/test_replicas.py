"""Two enricher replicas (same group, different instance ids) split the partitions; while one joins and later
leaves, nothing is lost and nothing is duplicated on the enriched topic."""

from __future__ import annotations

import asyncio
from collections import Counter
from contextlib import AsyncExitStack

import pytest
from aiohttp.test_utils import TestClient, TestServer

from leadline_enricher.app import ENRICHER, create_app
from leadline_enricher.settings import EnricherSettings
from leadline_shared import config, kafka
from leadline_shared.events import EnrichedEvent, RawEvent, utc_now_iso
from leadline_shared.ids import new_id
from support import read_topic, topic_is_quiet

pytestmark = pytest.mark.integration

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"


def events(n: int, tag: str) -> list[RawEvent]:
    return [
        RawEvent(
            event_id=new_id(),
            type="page_view",
            source="pixel",
            received_at=utc_now_iso(),
            anon_id=f"{tag}-{i % 40}",
            ids={"email": f"{tag}{i % 7}@example.com"} if i % 9 == 0 else {},
            context={"user_agent": BROWSER},
        )
        for i in range(n)
    ]


async def produce(bootstrap: str, topic: str, batch: list[RawEvent], pause: float = 0.0) -> None:
    """Send the events; with ``pause``, 20 at a time with that pause between, so traffic spans a rebalance."""
    producer = kafka.producer(bootstrap)
    await producer.start()
    try:
        for i, e in enumerate(batch, start=1):
            await producer.send(topic, e.to_json(), key=e.key())
            if pause and i % 20 == 0:
                await producer.flush()
                await asyncio.sleep(pause)
    finally:
        await producer.stop()


async def assigned(client: TestClient, timeout: float = 30.0) -> None:
    consumer = client.app[ENRICHER].consumer
    assert consumer is not None
    async with asyncio.timeout(timeout):
        while not consumer.assignment():
            await asyncio.sleep(0.1)


def settings(kafka_bootstrap: str, pg_dsn: str, schema: str, run_id: str, instance: str) -> EnricherSettings:
    return config.load(
        EnricherSettings,
        {
            "LEADLINE_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "LEADLINE_TOPIC_PREFIX": f"test-{run_id}.",
            "LEADLINE_PG_DSN": pg_dsn,
            "LEADLINE_IDENTITY_SCHEMA": schema,
            "LEADLINE_ENRICHER_GROUP": f"enricher-{run_id}",
            "LEADLINE_INSTANCE_ID": instance,
            "LEADLINE_ENRICHER_BATCH_MAX": "40",
        },
    )


def enriched_count(client: TestClient) -> float:
    registry = client.app[ENRICHER].metrics.registry
    return registry.get_sample_value("leadline_enricher_events_total") or 0.0


async def test_two_replicas_split_partitions_and_a_rebalance_loses_and_duplicates_nothing(
    kafka_bootstrap: str, pg_dsn: str, schema: str, run_id: str, topics: kafka.Topics
) -> None:
    first, second, third, fourth = events(600, "a"), events(600, "b"), events(600, "c"), events(600, "d")
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(
            TestClient(TestServer(create_app(settings(kafka_bootstrap, pg_dsn, schema, run_id, "replica-a"))))
        )
        await produce(kafka_bootstrap, topics.raw, first)
        b = TestClient(TestServer(create_app(settings(kafka_bootstrap, pg_dsn, schema, run_id, "replica-b"))))
        await b.start_server()
        try:
            sending = asyncio.ensure_future(produce(kafka_bootstrap, topics.raw, second, pause=0.05))
            await assigned(b)  # the group rebalanced while events were flowing
            await sending
            await produce(kafka_bootstrap, topics.raw, fourth)
            await read_topic(kafka_bootstrap, topics.enriched, 1800, timeout=60)
            assert enriched_count(b) > 0, "the second replica never processed anything"
        finally:
            await b.close()  # leaves the group: its partitions move back to the first replica
        await produce(kafka_bootstrap, topics.raw, third)
        rows = await read_topic(kafka_bootstrap, topics.enriched, 2400, timeout=60)
        assert enriched_count(a) > 0
    seen = Counter(EnrichedEvent.from_json(v).event_id for _, v, _ in rows)
    assert set(seen) == {e.event_id for e in first + second + third + fourth}
    assert max(seen.values()) == 1
    assert await topic_is_quiet(kafka_bootstrap, topics.enriched, 2400) == 2400
