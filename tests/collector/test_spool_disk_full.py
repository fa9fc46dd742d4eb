"""A spool whose disk filled while Kafka was down is replayed when Kafka returns, by the same process (issue 17).

The failure drill found it: with the spool on an 8 MiB tmpfs, the disk filled during a Kafka outage; when the
broker returned, the replay's progress write (a new ``<segment>.tmp`` file) failed with ENOSPC and ended the
recovery task, and 16,708 accepted events (78 acknowledged forms) stayed on disk until a restart. Here a real
``leadline collector`` process spools onto a small disk of its own (a tmpfs mounted for the test, or a loop-mounted
ext4 image where tmpfs is refused), under load, while its private broker is down, until the disk itself refuses
writes; then the broker starts again. Every acknowledged form and every pixel answered before the disk filled
must reach the raw topic within a bound, with no restart; pixels answered once it was full may be lost, but
each one lost must be counted as dropped.

Mounting needs root, which the test machine and CI have. Where it cannot mount, the test fails and says why.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from collector.small_disk import small_disk_at
from leadline_localstack import kafka as local_kafka
from leadline_localstack import procs, services
from leadline_shared import kafka
from sites import DEMO_FORM, publish_config

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

DISK_MB = 4
PIXEL_BURST = 100  # pixels every 0.1 s: 1,000/s
FORM_EVERY = 0.2  # seconds: 5 form posts/s
FILL_LIMIT = 45.0  # seconds of load at most to fill the disk
RECOVERY_BOUND = 45.0  # seconds from the broker's start until the spool has drained
ORIGIN = {"Origin": "https://www.shop.example", "Accept": "application/json"}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A directory on a disk of DISK_MB MiB of its own, so the spool meets a real ENOSPC."""
    with small_disk_at(tmp_path, DISK_MB) as mount:
        yield mount


@pytest.fixture
def collector(
    private_kafka: tuple[Path, int, int], pg_dsn: str, run_id: str, tmp_path: Path, small_disk: Path
) -> Iterator[tuple[int, int, kafka.Topics]]:
    """A real ``leadline collector`` process spooling onto the small disk: (port, pid, topics)."""
    _run_dir, broker_port, _controller = private_kafka
    bootstrap = f"127.0.0.1:{broker_port}"
    topics = kafka.Topics.with_prefix(f"full-{run_id}.")
    asyncio.run(kafka.ensure_topics(bootstrap, topics, partitions=6))
    asyncio.run(publish_config(bootstrap, topics.config, [DEMO_FORM]))
    port = procs.free_port()
    env = services.service_env(
        bootstrap,
        pg_dsn,
        LEADLINE_TOPIC_PREFIX=f"full-{run_id}.",
        LEADLINE_COLLECTOR_PORT=str(port),
        LEADLINE_SPOOL_DIR=str(small_disk / "spool"),
        LEADLINE_FORM_RATE_PER_IP="100000",
    )
    spec = next(s for s in services.SERVICES if s.name == "collector")
    services.start_service(tmp_path, spec, env)
    pid = services.running_pid(tmp_path, "collector")
    assert pid is not None
    yield port, pid, topics
    services.stop_service(tmp_path, "collector")


@dataclass
class Load:
    """Pixels and form posts against one collector, remembering when each was answered and the first refusal."""

    port: int
    pixels: dict[str, float] = field(default_factory=dict)  # id -> when answered
    forms: set[str] = field(default_factory=set)  # acknowledged (200)
    forms_refused: int = 0
    full_at: float | None = None  # the first sign the disk is full: a form refused or /readyz 503
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def saw_full(self) -> None:
        if self.full_at is None:
            self.full_at = time.monotonic()

    async def run(self, http: aiohttp.ClientSession) -> None:
        await asyncio.gather(self._pixels(http), self._forms(http), self._readiness(http))

    async def _pixels(self, http: aiohttp.ClientSession) -> None:
        seq = 0
        while not self.stop.is_set():
            tick = time.monotonic()
            ids = [f"p{seq + i}" for i in range(PIXEL_BURST)]
            seq += PIXEL_BURST
            for ident, ok in zip(
                ids, await asyncio.gather(*(self._pixel(http, i) for i in ids)), strict=True
            ):
                if ok:
                    self.pixels[ident] = time.monotonic()
            await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - tick)))

    async def _pixel(self, http: aiohttp.ClientSession, ident: str) -> bool:
        url = f"http://127.0.0.1:{self.port}/p.gif"
        async with http.get(url, params={"url": "https://www.shop.example/", "e": "load", "n": ident}) as r:
            return r.status == 200

    async def _forms(self, http: aiohttp.ClientSession) -> None:
        n = 0
        while not self.stop.is_set():
            email = f"f{n}@shop.example"
            n += 1
            url = f"http://127.0.0.1:{self.port}/f/demo"
            async with http.post(url, json={"email": email}, headers=ORIGIN) as r:
                if r.status == 200:
                    self.forms.add(email)
                else:
                    self.forms_refused += 1
                    self.saw_full()
            await asyncio.sleep(FORM_EVERY)

    async def _readiness(self, http: aiohttp.ClientSession) -> None:
        while not self.stop.is_set():
            async with http.get(f"http://127.0.0.1:{self.port}/readyz") as r:
                if r.status == 503:
                    self.saw_full()
            await asyncio.sleep(0.2)


async def missing_after(
    bootstrap: str, topic: str, must: set[str], may: set[str], timeout: float
) -> tuple[set[str], set[str]]:
    """Read the raw topic until every id in ``must`` is there and the topic is quiet, or ``timeout`` passes.

    Ids are pixel ``n`` properties and form e-mails; returns what is missing of ``must`` and of ``may``."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    end = time.monotonic() + timeout
    while True:  # the broker was just started: it may not answer metadata yet
        try:
            await consumer.start()
            break
        except KafkaError:
            if time.monotonic() > end:
                raise
            await asyncio.sleep(0.5)
    try:
        quiet = False
        while (must or not quiet) and time.monotonic() < end:
            batches = list((await consumer.getmany(timeout_ms=1000, max_records=20000)).values())
            quiet = not batches
            for records in batches:
                for record in records:
                    doc = orjson.loads(record.value)
                    ident = (
                        doc["ids"].get("email")
                        if doc["type"] == "form_submit"
                        else doc["properties"].get("n")
                    )
                    must.discard(ident)
                    may.discard(ident)
    finally:
        await consumer.stop()
    return must, may


async def metric(http: aiohttp.ClientSession, port: int, name: str) -> float:
    """The sum of a metric's samples (over its labels); 0 when absent."""
    total = 0.0
    async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
        for line in (await resp.text()).splitlines():
            if line.startswith((name + " ", name + "{")):
                total += float(line.rsplit(" ", 1)[1])
    return total


async def test_a_spool_whose_disk_filled_is_replayed_when_kafka_returns_without_a_restart(
    private_kafka: tuple[Path, int, int], collector: tuple[int, int, kafka.Topics], small_disk: Path
) -> None:
    run_dir, broker_port, controller = private_kafka
    port, pid, topics = collector
    load = Load(port)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as http:
        running = asyncio.ensure_future(load.run(http))
        await asyncio.sleep(2.0)
        await asyncio.to_thread(local_kafka.stop_kafka, run_dir)
        deadline = time.monotonic() + FILL_LIMIT
        while (load.full_at is None or time.monotonic() < load.full_at + 2.0) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        load.stop.set()
        await running
        assert load.full_at is not None, f"the {DISK_MB} MiB disk should have filled within {FILL_LIMIT} s"
        statvfs = os.statvfs(small_disk)
        assert statvfs.f_bavail * statvfs.f_frsize < 64 * 1024, "the spool's disk itself should be full"
        assert len(load.forms) > 20, "acknowledged forms should be in the spool"
        assert len(load.pixels) > 5_000, "thousands of events should be in the spool"

        await asyncio.to_thread(local_kafka.start_kafka, run_dir, broker_port, controller, heap_mb=256)
        back_at = time.monotonic()
        while await metric(http, port, "leadline_collector_spool_records") > 0:
            assert time.monotonic() < back_at + RECOVERY_BOUND, (
                f"the spool did not drain within {RECOVERY_BOUND} s of the broker's return"
            )
            await asyncio.sleep(0.25)
        assert procs.pid_alive(pid), "the collector must recover without a restart"

        before_full = {i for i, at in load.pixels.items() if at < load.full_at - 1.0}
        must_missing, missing_after_full = await missing_after(
            f"127.0.0.1:{broker_port}",
            topics.raw,
            before_full | load.forms,
            set(load.pixels) - before_full,
            20.0,
        )
        missing_forms = must_missing & load.forms
        assert not missing_forms, (
            f"{len(missing_forms)} of {len(load.forms)} acknowledged forms never reached Kafka"
        )
        lost_before_full = must_missing - load.forms
        assert not lost_before_full, (
            f"{len(lost_before_full)} of {len(before_full)} pixels answered before the disk filled never reached Kafka"
        )
        dropped = await metric(http, port, "leadline_collector_dropped_total")
        assert len(missing_after_full) <= dropped, (
            f"{len(missing_after_full)} pixels answered once the disk was full are missing, "
            f"but only {dropped:.0f} drops were counted"
        )
        for _ in range(50):  # the gauges follow within their update interval
            if await metric(http, port, "leadline_collector_kafka_up") == 1:
                break
            await asyncio.sleep(0.2)
        assert await metric(http, port, "leadline_collector_kafka_up") == 1
        async with http.get(f"http://127.0.0.1:{port}/readyz") as ready:
            assert ready.status == 200, "once the spool has room again the collector is ready again"
        assert not [p.name for p in (small_disk / "spool").glob("*.tmp")]
