"""Kafka outages lose nothing: while the broker is down the collector keeps answering from its disk spool,
and once it is back every accepted event arrives exactly once, in order per visitor.

These tests stop and restart a broker of their own (not the shared one), started by the project's own code.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path

import orjson
import pytest
from aiohttp.test_utils import TestClient

from leadline_localstack import kafka as local_kafka
from leadline_shared import kafka
from support import read_topic, topic_is_quiet, wait_for_metric

pytestmark = pytest.mark.integration


async def pixel(client: TestClient, visitor: str, seq: int) -> None:
    resp = await client.get("/p.gif", params={"seq": str(seq)}, cookies={"ll_vid": visitor})
    assert resp.status == 200


def by_visitor(messages: list[tuple[bytes | None, bytes, dict[str, bytes]]]) -> dict[str, list[int]]:
    seen: dict[str, list[int]] = defaultdict(list)
    for _, value, _ in messages:
        doc = orjson.loads(value)
        seen[doc["anon_id"]].append(int(doc["properties"]["seq"]))
    return seen


VISITORS = [f"0190b3f0-7c1e-7cc2-9a57-00000000000{i}" for i in range(4)]


async def test_events_sent_while_kafka_is_down_arrive_once_in_order_after_it_returns(
    private_kafka: tuple[Path, int, int], make_client: object, run_id: str
) -> None:
    run_dir, port, controller = private_kafka
    bootstrap = f"127.0.0.1:{port}"
    topics = kafka.Topics.with_prefix(f"outage-{run_id}.")
    await kafka.ensure_topics(bootstrap, topics, partitions=3)
    client = await make_client(  # type: ignore[operator]
        LEADLINE_KAFKA_BOOTSTRAP=bootstrap,
        LEADLINE_TOPIC_PREFIX=f"outage-{run_id}.",
        LEADLINE_PUBLISH_TIMEOUT="1",
    )
    seq = 0
    for _ in range(5):  # before the outage
        for v in VISITORS:
            await pixel(client, v, seq)
        seq += 1
    await wait_for_metric(client, "leadline_collector_published_total", 20)

    await asyncio.to_thread(local_kafka.stop_kafka, run_dir)
    for _ in range(10):  # during the outage: every hit still answered
        for v in VISITORS:
            await pixel(client, v, seq)
        seq += 1
    await wait_for_metric(client, "leadline_collector_kafka_up", 0, exact=True)
    assert (await client.get("/readyz")).status == 200  # still taking events: the spool has room

    await asyncio.to_thread(local_kafka.start_kafka, run_dir, port, controller, heap_mb=256)
    for _ in range(5):  # after it is back, while the spool drains
        for v in VISITORS:
            await pixel(client, v, seq)
        seq += 1
    await wait_for_metric(client, "leadline_collector_kafka_up", 1, exact=True, timeout=60)

    expected = seq * len(VISITORS)
    messages = await read_topic(bootstrap, topics.raw, expected, timeout=30)
    assert await topic_is_quiet(bootstrap, topics.raw, expected, wait=2) == expected, "duplicates arrived"
    ids = [orjson.loads(v)["event_id"] for _, v, _ in messages]
    assert len(set(ids)) == expected
    for visitor, seqs in by_visitor(messages).items():
        assert seqs == list(range(seq)), f"visitor {visitor} out of order: {seqs}"


async def test_a_collector_restarted_during_the_outage_replays_its_spool_on_start(
    private_kafka: tuple[Path, int, int], make_client: object, run_id: str, tmp_path: Path
) -> None:
    run_dir, port, controller = private_kafka
    bootstrap = f"127.0.0.1:{port}"
    topics = kafka.Topics.with_prefix(f"restart-{run_id}.")
    await kafka.ensure_topics(bootstrap, topics, partitions=3)
    env = {
        "LEADLINE_KAFKA_BOOTSTRAP": bootstrap,
        "LEADLINE_TOPIC_PREFIX": f"restart-{run_id}.",
        "LEADLINE_PUBLISH_TIMEOUT": "1",
        "LEADLINE_SPOOL_DIR": str(tmp_path / "restart-spool"),
    }
    await asyncio.to_thread(local_kafka.stop_kafka, run_dir)
    try:
        first = await make_client(**env)  # type: ignore[operator]
        for i in range(8):
            await pixel(first, VISITORS[i % 2], i)
        await wait_for_metric(first, "leadline_collector_spooled_total", 8)
        await first.close()  # SIGTERM-like shutdown while Kafka is still down
    finally:
        await asyncio.to_thread(local_kafka.start_kafka, run_dir, port, controller, heap_mb=256)
    second = await make_client(**env)  # type: ignore[operator]
    messages = await read_topic(bootstrap, topics.raw, 8, timeout=30)
    assert await topic_is_quiet(bootstrap, topics.raw, 8, wait=1) == 8
    assert sorted(s for seqs in by_visitor(messages).values() for s in seqs) == list(range(8))
    await wait_for_metric(second, "leadline_collector_replayed_total", 8)
