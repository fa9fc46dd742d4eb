"""A crash loses and duplicates nothing: the enricher process is killed with SIGKILL mid-stream, inside one of its
Kafka transactions (tests/enricher/transactions.py: a kill sent blindly landed between transactions every time),
restarted, and every raw event appears exactly once on the enriched topic for read_committed readers
(crm-core)."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from enricher.transactions import OpenTransactions, kill_inside_transaction
from leadline_localstack import procs, services
from leadline_shared import kafka
from leadline_shared.events import EnrichedEvent, RawEvent, utc_now_iso
from leadline_shared.ids import new_id
from support import read_topic, topic_is_quiet

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ENRICHER = next(s for s in services.SERVICES if s.name == "enricher")
TOTAL = 3000
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"


@pytest.fixture
def env(kafka_bootstrap: str, pg_dsn: str, schema: str, run_id: str, topics: kafka.Topics) -> dict[str, str]:
    return services.service_env(
        kafka_bootstrap,
        pg_dsn,
        LEADLINE_TOPIC_PREFIX=f"test-{run_id}.",
        LEADLINE_IDENTITY_SCHEMA=schema,
        LEADLINE_ENRICHER_GROUP=f"enricher-{run_id}",
        LEADLINE_INSTANCE_ID=f"crash-{run_id}",
        LEADLINE_ENRICHER_PORT=str(procs.free_port()),
        LEADLINE_ENRICHER_BATCH_MAX="50",  # many small transactions, so the kill lands inside one
    )


@pytest.fixture
def run_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    services.stop_service(tmp_path, "enricher")


def event(i: int) -> RawEvent:
    ids = {"email": f"visitor{i % 97}@example.com"} if i % 10 == 0 else {}
    return RawEvent(
        event_id=new_id(),
        type="page_view",
        source="pixel",
        received_at=utc_now_iso(),
        anon_id=f"v{i % 300}",
        ids=ids,
        context={"user_agent": BROWSER, "url": f"https://shop.example/{i}"},
    )


async def produce_slowly(bootstrap: str, topic: str, events: list[RawEvent], chunk: int = 20) -> None:
    """About 8 s of traffic, so the kill lands while events are still flowing."""
    producer = kafka.producer(bootstrap)
    await producer.start()
    try:
        for start in range(0, len(events), chunk):
            for e in events[start : start + chunk]:
                await producer.send(topic, e.to_json(), key=e.key())
            await producer.flush()
            await asyncio.sleep(0.05)
    finally:
        await producer.stop()


async def wait_for_output(bootstrap: str, topic: str, at_least: int, timeout: float = 60.0) -> int:
    """Follow the enriched topic (read_committed) until it holds ``at_least`` events; returns the count seen."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
        isolation_level="read_committed", enable_auto_commit=False,
    )  # fmt: skip
    await consumer.start()
    seen = 0
    try:
        async with asyncio.timeout(timeout):
            while seen < at_least:
                batch = await consumer.getmany(timeout_ms=50)
                seen += sum(len(r) for r in batch.values())
    finally:
        await consumer.stop()
    return seen


async def test_sigkill_mid_stream_then_restart_gives_every_event_exactly_once(
    env: dict[str, str], run_dir: Path, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    events = [event(i) for i in range(TOTAL)]
    await asyncio.to_thread(services.start_service, run_dir, ENRICHER, env)
    producing = asyncio.ensure_future(produce_slowly(kafka_bootstrap, topics.raw, events))
    await wait_for_output(kafka_bootstrap, topics.enriched, 300)

    pid = services.running_pid(run_dir, "enricher")
    assert pid is not None
    async with OpenTransactions(kafka_bootstrap, [topics.enriched]) as probe:
        left = await kill_inside_transaction(pid, probe, topics.enriched)
    assert await asyncio.to_thread(procs._CHILDREN[pid].wait, 10) == -signal.SIGKILL
    assert (
        left[topics.enriched] > 0
    )  # the kill landed inside a transaction: its events written, not committed
    assert not producing.done(), "the kill came too late to land mid-stream"

    await asyncio.to_thread(services.start_service, run_dir, ENRICHER, env)
    await producing
    rows = await read_topic(kafka_bootstrap, topics.enriched, TOTAL, timeout=90.0)
    seen = Counter(EnrichedEvent.from_json(v).event_id for _, v, _ in rows)
    assert set(seen) == {e.event_id for e in events}
    assert max(seen.values()) == 1
    assert await topic_is_quiet(kafka_bootstrap, topics.enriched, TOTAL) == TOTAL
