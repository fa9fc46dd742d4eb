"""A crash loses and duplicates nothing: the enricher process is killed with SIGKILL mid-stream, inside one of its
Kafka transactions (tests/enricher/transactions.py: a kill sent blindly landed between transactions every time),
restarted, and every raw event appears exactly once on the enriched topic for read_committed readers
(crm-core)."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from enricher.transactions import OpenTransactions, kill_inside_transaction, produce_slowly
from leadline_localstack import procs, services
from leadline_shared import kafka
from leadline_shared.events import EnrichedEvent, RawEvent, utc_now_iso
from leadline_shared.ids import new_id
from support import read_topic, topic_is_quiet

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ENRICHER = next(s for s in services.SERVICES if s.name == "enricher")
TOTAL = 3000
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"


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
    process_env: dict[str, str], run_dir: Path, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    events = [event(i) for i in range(TOTAL)]
    await asyncio.to_thread(services.start_service, run_dir, ENRICHER, process_env)
    producing = asyncio.ensure_future(
        produce_slowly(kafka_bootstrap, topics.raw, [(e.key(), e.to_json()) for e in events], 20)
    )
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

    await asyncio.to_thread(services.start_service, run_dir, ENRICHER, process_env)
    await producing
    rows = await read_topic(kafka_bootstrap, topics.enriched, TOTAL, timeout=90.0)
    seen = Counter(EnrichedEvent.from_json(v).event_id for _, v, _ in rows)
    assert set(seen) == {e.event_id for e in events}
    assert max(seen.values()) == 1
    assert await topic_is_quiet(kafka_bootstrap, topics.enriched, TOTAL) == TOTAL
