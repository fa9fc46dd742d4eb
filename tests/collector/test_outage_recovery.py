"""A broker outage of about a minute under load heals by itself: no collector restart, nothing left on disk.

Issue 19: after a one-minute outage at 1,500 pixels/s the collector replayed part of its spool (or nothing) and
then sat with 85,000 accepted events on disk until someone restarted it. These tests run a real ``leadline
collector`` process against a broker of their own, under steady load (pixels and form posts), stop the broker,
start it again, and require every answered pixel and every acknowledged form to reach Kafka within a bound,
while the same collector process keeps running.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from leadline_localstack import kafka as local_kafka
from leadline_localstack import procs, services
from leadline_shared import kafka
from sites import DEMO_FORM, publish_config

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

PIXELS_PER_SECOND = 1000
FORMS_PER_SECOND = 5
RECOVERY_BOUND = 60.0  # seconds from the broker's last return until everything answered is in Kafka
ORIGIN = {"Origin": "https://www.shop.example", "Accept": "application/json"}


@dataclass
class Load:
    """Steady traffic against one collector; remembers what was answered (only that must arrive)."""

    port: int
    pixels: set[str] = field(default_factory=set)
    forms: set[str] = field(default_factory=set)
    refused: int = 0

    async def run(self, http: aiohttp.ClientSession, seconds: float) -> None:
        await asyncio.gather(self._pixels(http, seconds), self._forms(http, seconds))

    async def _pixels(self, http: aiohttp.ClientSession, seconds: float) -> None:
        step, burst, seq = 0.1, PIXELS_PER_SECOND // 10, 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            tick = time.monotonic()
            ids = [f"p{seq + i}" for i in range(burst)]
            seq += burst
            statuses = await asyncio.gather(*(self._pixel(http, i) for i in ids))
            self.pixels.update(i for i, ok in zip(ids, statuses, strict=True) if ok)
            self.refused += statuses.count(False)
            await asyncio.sleep(max(0.0, step - (time.monotonic() - tick)))

    async def _pixel(self, http: aiohttp.ClientSession, ident: str) -> bool:
        url = f"http://127.0.0.1:{self.port}/p.gif"
        async with http.get(url, params={"url": "https://www.shop.example/", "e": "load", "n": ident}) as r:
            return r.status == 200

    async def _forms(self, http: aiohttp.ClientSession, seconds: float) -> None:
        end, n = time.monotonic() + seconds, 0
        while time.monotonic() < end:
            email = f"f{n}@shop.example"
            n += 1
            async with http.post(
                f"http://127.0.0.1:{self.port}/f/demo", json={"email": email}, headers=ORIGIN
            ) as r:
                if r.status == 200:  # acknowledged: durable in Kafka or in the fsync'd spool
                    self.forms.add(email)
                else:
                    self.refused += 1
            await asyncio.sleep(1 / FORMS_PER_SECOND)


async def arrived(bootstrap: str, topic: str, load: Load, timeout: float) -> tuple[set[str], set[str]]:
    """Read the raw topic until every answered pixel and form is there, or ``timeout`` passes; what is missing."""
    missing_pixels, missing_forms = set(load.pixels), set(load.forms)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    try:
        end = time.monotonic() + timeout
        while (missing_pixels or missing_forms) and time.monotonic() < end:
            for records in (await consumer.getmany(timeout_ms=500, max_records=20000)).values():
                for record in records:
                    doc = orjson.loads(record.value)
                    if doc["type"] == "form_submit":
                        missing_forms.discard(doc["ids"].get("email"))
                    else:
                        missing_pixels.discard(doc["properties"].get("n"))
    finally:
        await consumer.stop()
    return missing_pixels, missing_forms


async def metric(http: aiohttp.ClientSession, port: int, name: str) -> float:
    async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
        for line in (await resp.text()).splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


@pytest.fixture
def collector(
    private_kafka: tuple[Path, int, int], pg_dsn: str, run_id: str, tmp_path: Path
) -> Iterator[tuple[int, int, kafka.Topics]]:
    """A real ``leadline collector`` process on the private broker: (port, pid, topics)."""
    _run_dir, broker_port, _controller = private_kafka
    bootstrap = f"127.0.0.1:{broker_port}"
    topics = kafka.Topics.with_prefix(f"heal-{run_id}.")
    asyncio.run(kafka.ensure_topics(bootstrap, topics, partitions=6))
    asyncio.run(publish_config(bootstrap, topics.config, [DEMO_FORM]))
    port = procs.free_port()
    env = services.service_env(
        bootstrap,
        pg_dsn,
        LEADLINE_TOPIC_PREFIX=f"heal-{run_id}.",
        LEADLINE_COLLECTOR_PORT=str(port),
        LEADLINE_SPOOL_DIR=str(tmp_path / "spool"),
        LEADLINE_FORM_RATE_PER_IP="100000",
    )
    spec = next(s for s in services.SERVICES if s.name == "collector")
    services.start_service(tmp_path, spec, env)
    pid = services.running_pid(tmp_path, "collector")
    assert pid is not None
    yield port, pid, topics
    services.stop_service(tmp_path, "collector")


async def rehearse(
    private_kafka: tuple[Path, int, int],
    collector: tuple[int, int, kafka.Topics],
    outages: list[tuple[float, float]],
    load_seconds: float,
) -> None:
    """Load for ``load_seconds``; stop and start the broker at the (stop, start) offsets; check the outcome."""
    run_dir, broker_port, controller = private_kafka
    port, pid, topics = collector
    load = Load(port)

    async def chaos(t0: float) -> None:
        for stop_at, start_at in outages:
            await asyncio.sleep(max(0.0, t0 + stop_at - time.monotonic()))
            await asyncio.to_thread(local_kafka.stop_kafka, run_dir)
            await asyncio.sleep(max(0.0, t0 + start_at - time.monotonic()))
            await asyncio.to_thread(local_kafka.start_kafka, run_dir, broker_port, controller, heap_mb=256)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as http:
        t0 = time.monotonic()
        await asyncio.gather(load.run(http, load_seconds), chaos(t0))
        back_at = t0 + outages[-1][1]
        assert load.refused == 0, "the spool had room: every hit should have been answered"
        assert len(load.pixels) > 20_000, "thousands of events should be in flight"
        assert len(load.forms) > 100, "form posts should be among them"
        spooled = await metric(http, port, "leadline_collector_spooled_total")
        assert spooled > 10_000, f"the outage should have put thousands of events in the spool, not {spooled}"

        left = max(5.0, back_at + RECOVERY_BOUND - time.monotonic())
        missing_pixels, missing_forms = await arrived(f"127.0.0.1:{broker_port}", topics.raw, load, left)
        assert not missing_forms, f"{len(missing_forms)} acknowledged forms never reached Kafka"
        assert not missing_pixels, (
            f"{len(missing_pixels)} of {len(load.pixels)} answered pixels never reached Kafka"
        )
        assert procs.pid_alive(pid), "the collector must heal without a restart"
        for _ in range(50):  # the gauges follow within their update interval
            if await metric(http, port, "leadline_collector_kafka_up") == 1:
                break
            await asyncio.sleep(0.1)
        assert await metric(http, port, "leadline_collector_kafka_up") == 1
        assert await metric(http, port, "leadline_collector_spool_records") == 0
        assert await metric(http, port, "leadline_collector_spool_oldest_age_seconds") == 0


async def test_a_one_minute_outage_under_load_heals_without_a_restart(
    private_kafka: tuple[Path, int, int], collector: tuple[int, int, kafka.Topics]
) -> None:
    """The SRE's rehearsal from the issue: down for a minute under load; the load stops when it returns."""
    await rehearse(private_kafka, collector, outages=[(5.0, 65.0)], load_seconds=65.0)


async def test_a_broker_restarted_twice_in_a_row_heals_too(
    private_kafka: tuple[Path, int, int], collector: tuple[int, int, kafka.Topics]
) -> None:
    """Back for a few seconds (the spool half replayed, a fresh producer mid-flight), then down again. Shorter
    outages than the minute of the first test: what is rehearsed here is the second outage meeting the first's
    recovery, and 17 s and 14 s down at 1,000 pixels/s still put tens of thousands of events in the spool."""
    await rehearse(private_kafka, collector, outages=[(5.0, 22.0), (28.0, 42.0)], load_seconds=42.0)


async def test_a_broker_that_returns_while_the_load_runs_on_heals_too(
    private_kafka: tuple[Path, int, int], collector: tuple[int, int, kafka.Topics]
) -> None:
    """New events keep arriving while the spool drains: it must still empty and go direct again (20 s down, then
    15 s of load on top of the replay)."""
    await rehearse(private_kafka, collector, outages=[(5.0, 25.0)], load_seconds=40.0)
