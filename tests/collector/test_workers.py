"""`leadline collector --workers 2`: two processes answer on one port, a killed one comes back, and SIGTERM stops
both with every answered hit in Kafka (issue 17)."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import orjson
import pytest

from leadline_collector import workers
from leadline_collector.settings import CollectorSettings
from leadline_collector.workers import worker_spool
from leadline_localstack import procs, services
from leadline_shared import config, kafka
from support import read_topic, topic_is_quiet

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

WORKER = re.compile(r'^leadline_collector_worker\{index="(\d+)",pid="(\d+)"\} 1\.0$', re.MULTILINE)


@pytest.fixture
def two_workers(
    kafka_bootstrap: str, pg_dsn: str, run_id: str, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A supervisor running two workers on a free port, this test's topics and spool; killed if left running."""
    port = procs.free_port()
    env = services.service_env(
        kafka_bootstrap,
        pg_dsn,
        LEADLINE_TOPIC_PREFIX=f"test-{run_id}.",
        LEADLINE_COLLECTOR_PORT=str(port),
        LEADLINE_SPOOL_DIR=str(tmp_path / "spool"),
        LEADLINE_COLLECTOR_LINGER_MS="50",
    )
    with (tmp_path / "collector.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "leadline_shared.cli", "collector", "--workers", "2"],
            env=env,
            stdout=log,
            stderr=log,
        )
    try:
        assert procs.wait_until(lambda: services.ready(port), 60, interval=0.2), "collector not ready"
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


async def workers_seen(port: int, want: int, tries: int = 200) -> dict[str, int]:
    """Worker index -> pid, from /metrics scraped on fresh connections until ``want`` workers answered."""
    seen: dict[str, int] = {}
    connector = aiohttp.TCPConnector(
        force_close=True
    )  # a new connection each time: the kernel picks a worker
    async with aiohttp.ClientSession(connector=connector) as http:
        for _ in range(tries):
            async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                seen.update((i, int(pid)) for i, pid in WORKER.findall(await resp.text()))
            if len(seen) >= want:
                break
    return seen


async def send_pixels(port: int, numbers: range) -> set[int]:
    """Send one pixel per number, concurrently (so over many connections); the statuses answered."""
    async with aiohttp.ClientSession() as http:

        async def hit(i: int) -> int:
            async with http.get(f"http://127.0.0.1:{port}/p.gif", params={"n": str(i)}) as resp:
                return resp.status

        return set(await asyncio.gather(*(hit(i) for i in numbers)))


async def test_two_workers_share_the_port_restart_and_stop_without_loss(
    two_workers: tuple[subprocess.Popen[bytes], int],
    kafka_bootstrap: str,
    topics: kafka.Topics,
    tmp_path: Path,
) -> None:
    proc, port = two_workers
    first = await workers_seen(port, 2)
    assert sorted(first) == ["0", "1"], f"both workers should answer on port {port}: {first}"
    assert len(set(first.values())) == 2
    assert proc.pid not in first.values()

    os.kill(first["1"], signal.SIGKILL)
    for _ in range(100):  # the supervisor restarts it after its back-off
        again = await workers_seen(port, 2, tries=50)
        if again.get("1", first["1"]) != first["1"]:
            break
        await asyncio.sleep(0.2)
    assert again["1"] != first["1"], "the killed worker should have been restarted"
    assert again["0"] == first["0"]
    assert proc.poll() is None

    assert await send_pixels(port, range(600)) == {200}
    proc.send_signal(signal.SIGTERM)  # at once: much of it is still in the workers' publisher batches
    assert await asyncio.to_thread(proc.wait, 30) == 0
    for pid in again.values():
        assert not procs.pid_alive(pid), f"worker {pid} outlived the supervisor"
    messages = await read_topic(kafka_bootstrap, topics.raw, 600, timeout=30)
    assert await topic_is_quiet(kafka_bootstrap, topics.raw, 600, wait=0.5) == 600
    assert sorted(int(orjson.loads(v)["properties"]["n"]) for _, v, _ in messages) == list(range(600))
    root = str(tmp_path / "spool")
    for index in (0, 1):
        assert not list((Path(worker_spool(root, index)) / "events").glob("*.seg")), "spool should be empty"


def test_the_setting_and_the_spool_of_each_worker() -> None:
    """LEADLINE_COLLECTOR_WORKERS is read into the settings (≥ 1); worker 0 keeps a single process's spool, so a
    spool left before the switch to several workers is replayed; the others get their own."""
    assert config.load(CollectorSettings, {"LEADLINE_COLLECTOR_WORKERS": "4"}).workers == 4
    assert config.load(CollectorSettings, {}).workers == 1
    with pytest.raises(config.ConfigError, match="LEADLINE_COLLECTOR_WORKERS"):
        config.load(CollectorSettings, {"LEADLINE_COLLECTOR_WORKERS": "0"})
    assert worker_spool("/var/spool/ll", 0) == "/var/spool/ll"
    assert worker_spool("/var/spool/ll", 1) == str(Path("/var/spool/ll") / "worker-1")


def test_a_worker_that_keeps_dying_stops_the_collector_non_zero(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker that exits at once, again and again (say a bad setting only it trips on), is restarted a few
    times with a doubling back-off, then the supervisor gives up with a non-zero exit instead of looping for ever."""
    starts: list[int] = []

    def failing(index: int) -> list[str]:
        starts.append(index)
        return [sys.executable, "-c", "raise SystemExit(3)"]

    monkeypatch.setattr(workers, "worker_command", failing)
    monkeypatch.setattr(workers, "BACKOFF_FIRST_S", 0.05)
    with caplog.at_level(logging.INFO, logger=workers.__name__):
        assert workers.Supervisor(1).run() == 1
    assert starts == [0] * workers.MAX_QUICK_DEATHS
    delays = [
        getattr(r, "delay_s", None) for r in caplog.records if r.getMessage() == "worker died; restarting"
    ]
    assert delays == [0.05, 0.1, 0.2, 0.4]
    assert any(r.getMessage() == "worker keeps dying; stopping" for r in caplog.records)


async def test_workers_do_not_outlive_a_killed_supervisor(
    two_workers: tuple[subprocess.Popen[bytes], int],
) -> None:
    """A supervisor killed outright (OOM killer, SIGKILL) takes its workers with it, so none is left holding the
    port beside the collector started next."""
    proc, port = two_workers
    pids = list((await workers_seen(port, 2)).values())
    assert len(pids) == 2
    proc.kill()
    proc.wait(10)
    assert procs.wait_until(lambda: not any(procs.pid_alive(pid) for pid in pids), 30, interval=0.2)
