"""SIGTERM loses nothing: the collector process stops accepting, flushes what it holds to Kafka, and exits 0."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import aiohttp
import orjson
import pytest

from leadline_localstack import procs, services
from leadline_shared import kafka
from support import read_topic, topic_is_quiet

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


async def test_hits_answered_just_before_sigterm_all_reach_kafka(
    kafka_bootstrap: str, pg_dsn: str, topics: kafka.Topics, run_id: str, tmp_path: Path
) -> None:
    port = procs.free_port()
    env = services.service_env(
        kafka_bootstrap,
        pg_dsn,
        LEADLINE_TOPIC_PREFIX=f"test-{run_id}.",
        LEADLINE_COLLECTOR_PORT=str(port),
        LEADLINE_SPOOL_DIR=str(tmp_path / "spool"),
        LEADLINE_COLLECTOR_LINGER_MS="50",
    )
    spec = next(s for s in services.SERVICES if s.name == "collector")
    await asyncio.to_thread(services.start_service, tmp_path, spec, env)
    pid = services.running_pid(tmp_path, "collector")
    assert pid is not None
    async with aiohttp.ClientSession() as http:

        async def hit(i: int) -> int:
            async with http.get(f"http://127.0.0.1:{port}/p.gif", params={"n": str(i)}) as resp:
                return resp.status

        statuses = await asyncio.gather(*(hit(i) for i in range(300)))
    assert set(statuses) == {200}
    os.kill(pid, signal.SIGTERM)  # right away: much of it is still in the publisher's batch
    assert await asyncio.to_thread(procs._CHILDREN[pid].wait, 20) == 0
    messages = await read_topic(kafka_bootstrap, topics.raw, 300, timeout=20)
    assert await topic_is_quiet(kafka_bootstrap, topics.raw, 300, wait=0.5) == 300
    assert sorted(int(orjson.loads(v)["properties"]["n"]) for _, v, _ in messages) == list(range(300))
    assert not list((tmp_path / "spool" / "events").glob("*.seg")), "nothing should be left in the spool"
