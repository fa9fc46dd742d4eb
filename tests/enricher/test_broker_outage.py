"""The enricher comes back by itself after a broker outage mid-stream, losing and duplicating nothing (issue 17).

The failure drills found its pipeline task dead after the broker stopped ("KafkaError: Unexpected error during
batch delivery") or returned (``LeaderNotAvailableError``): the process lived on, /readyz answered 503 and
nothing more was enriched until a restart. Here a real enricher app runs on a broker of the module's own with
thousands of raw events in flight; the broker is stopped for about 15 s and started again, and the same app must
become ready again and put every raw event exactly once on the enriched topic (read_committed).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from leadline_enricher.app import create_app
from leadline_enricher.settings import EnricherSettings
from leadline_localstack import kafka as local_kafka
from leadline_shared import config, kafka
from leadline_shared.events import EnrichedEvent, RawEvent, utc_now_iso
from leadline_shared.ids import new_id
from support import metric, read_topic, topic_is_quiet

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

TOTAL = 5000
OUTAGE_SECONDS = 15.0
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"


def event(i: int) -> RawEvent:
    """A page view; every tenth names an email, so identity work (and identity changes) ride along."""
    ids = {"email": f"visitor{i % 97}@example.com"} if i % 10 == 0 else {}
    return RawEvent(
        event_id=new_id(),
        type="page_view",
        source="pixel",
        received_at=utc_now_iso(),
        anon_id=f"v{i % 300}",
        ids=ids,
        context={"user_agent": BROWSER, "url": f"https://shop.example/{i}"},
        properties={"cart": "x" * 2000},  # bulky, so each transaction's sending takes a while
    )


@pytest.fixture
async def outage_topics(private_kafka: tuple[Path, int, int], run_id: str) -> kafka.Topics:
    _run_dir, port, _controller = private_kafka
    names = kafka.Topics.with_prefix(f"outage-{run_id}.")
    await kafka.ensure_topics(f"127.0.0.1:{port}", names, partitions=3)
    return names


@pytest.fixture
async def enricher(
    private_kafka: tuple[Path, int, int], pg_dsn: str, schema: str, run_id: str, outage_topics: kafka.Topics
) -> AsyncIterator[TestClient]:
    """A real enricher app on the private broker; small batches, so the outage lands inside a transaction."""
    _run_dir, port, _controller = private_kafka
    env = {
        "LEADLINE_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}",
        "LEADLINE_TOPIC_PREFIX": f"outage-{run_id}.",
        "LEADLINE_PG_DSN": pg_dsn,
        "LEADLINE_IDENTITY_SCHEMA": schema,
        "LEADLINE_ENRICHER_GROUP": f"enricher-{run_id}",
        "LEADLINE_INSTANCE_ID": "outage",
        "LEADLINE_ENRICHER_BATCH_MAX": "1000",
        # records held back longer than this fail their batch: shorter than the outage, as the drills' minute
        # was longer than the default 40 s (the batch's leader still unknown when the broker returned)
        "LEADLINE_ENRICHER_KAFKA_TIMEOUT_MS": "5000",
    }
    async with TestClient(TestServer(create_app(config.load(EnricherSettings, env)))) as c:
        yield c


async def produce(bootstrap: str, topic: str, events: list[RawEvent], per_second: int = 500) -> None:
    """Send ``events`` at a steady rate, each chunk flushed, so the enricher has transactions in flight."""
    producer = kafka.producer(bootstrap)
    await producer.start()
    try:
        chunk = per_second // 10
        for start in range(0, len(events), chunk):
            for e in events[start : start + chunk]:
                await producer.send(topic, e.to_json(), key=e.key())
            await producer.flush()
            await asyncio.sleep(0.1)
    finally:
        await producer.stop()


async def pipeline_alive(client: TestClient) -> bool:
    """The readiness check of the consume loop (false once its task has ended)."""
    body = await (await client.get("/readyz")).json()
    return bool(body["checks"]["pipeline"])


async def ready(client: TestClient, timeout: float) -> bool:
    """Whether /readyz answers 200 within ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if (await client.get("/readyz")).status == 200:
            return True
        await asyncio.sleep(0.5)
    return False


async def test_a_broker_outage_mid_stream_heals_and_enriches_every_event_once(
    private_kafka: tuple[Path, int, int], enricher: TestClient, outage_topics: kafka.Topics
) -> None:
    run_dir, port, controller = private_kafka
    bootstrap = f"127.0.0.1:{port}"
    events = [event(i) for i in range(TOTAL)]
    half = TOTAL * 4 // 5
    await produce(bootstrap, outage_topics.raw, events[:half], per_second=20_000)
    async with asyncio.timeout(30):  # the first transaction committed: the next ones are in flight
        while await metric(enricher, "leadline_enricher_events_total") == 0:
            await asyncio.sleep(0.02)

    await asyncio.to_thread(local_kafka.stop_kafka, run_dir)
    done_at_stop = await metric(enricher, "leadline_enricher_events_total")
    assert done_at_stop < half, "the outage came too late to land mid-stream"
    await asyncio.sleep(OUTAGE_SECONDS)
    await asyncio.to_thread(local_kafka.start_kafka, run_dir, port, controller, heap_mb=256)
    await produce(bootstrap, outage_topics.raw, events[half:])  # traffic again while the broker settles

    assert await pipeline_alive(enricher), "the pipeline task must live through the outage"
    rows = await read_topic(bootstrap, outage_topics.enriched, TOTAL, timeout=60.0)
    seen = Counter(EnrichedEvent.from_json(v).event_id for _, v, _ in rows)
    assert set(seen) == {e.event_id for e in events}
    assert max(seen.values()) == 1
    assert await topic_is_quiet(bootstrap, outage_topics.enriched, TOTAL) == TOTAL
    assert await ready(enricher, 20.0), "/readyz must answer 200 again once the broker is back"
