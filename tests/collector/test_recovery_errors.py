"""An unexpected error in the spool's recovery never ends recovery silently, and a pixel's failed spool write is
read and counted rather than left for asyncio to report (issue 17).

In the failure drill an ENOSPC ended the recovery task and the only trace was "Future exception was never
retrieved": the futures of pixels' spool writes, which nobody awaited.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.small_disk import small_disk_at
from leadline_collector import publisher as publisher_mod
from leadline_collector import spool as spool_mod
from leadline_collector.metrics import CollectorMetrics
from leadline_collector.publisher import Publisher
from leadline_collector.spool import Spool
from leadline_shared.events import RawEvent


def sample(metrics: CollectorMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels or None) or 0.0


async def test_an_error_in_a_recovery_attempt_is_logged_counted_and_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(publisher_mod, "RECOVER_MIN", 0.01)
    spool = Spool(tmp_path, max_bytes=1_000_000)
    spool.open()
    metrics = CollectorMetrics.create()
    pub = Publisher("127.0.0.1:1", "raw", spool, metrics)
    pub._spooling = True
    calls: list[int] = []

    async def flaky() -> bool:  # the first attempt fails as the drill's did; the next ones succeed
        calls.append(1)
        if len(calls) == 1:
            raise OSError(28, "No space left on device")
        return True

    monkeypatch.setattr(pub, "_try_recover", flaky)
    task = asyncio.ensure_future(pub._recover_loop())
    try:
        for _ in range(200):
            if len(calls) >= 3:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await spool.close()
    assert len(calls) >= 3, "recovery must go on after an attempt fails"
    assert sample(metrics, "leadline_collector_recovery_errors_total", error="OSError") == 1
    [line] = [r for r in caplog.records if r.getMessage() == "spool recovery attempt failed; retrying"]
    assert line.levelno == logging.ERROR
    assert line.__dict__["error"] == "OSError"


@pytest.fixture
def full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setattr(spool_mod, "DISK_RETRY_EVERY", 0.0)
    with small_disk_at(tmp_path, 1) as mount:
        (mount / "ballast").write_bytes(b"\0" * (1024 * 1024 - 8192))
        yield mount


@pytest.mark.integration  # mounts a filesystem: root, like the drills
async def test_a_pixel_the_full_disk_refused_is_counted_as_dropped_and_its_future_read(
    full_disk: Path,
) -> None:
    unretrieved: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: unretrieved.append(context))
    spool = Spool(full_disk / "spool", max_bytes=100_000_000)
    spool.open()
    metrics = CollectorMetrics.create()
    pub = Publisher("127.0.0.1:1", "raw", spool, metrics)
    pub._spooling = True
    for i in range(20):
        event = RawEvent(
            event_id=f"e{i}",
            type="page_view",
            source="pixel",
            received_at="2026-11-30T16:00:00+00:00",
            properties={"pad": "x" * 2000},
        )
        pub.store_nowait(event)
        await asyncio.sleep(0.01)
    await spool.close()
    gc.collect()
    await asyncio.sleep(0)
    loop.set_exception_handler(None)
    assert sample(metrics, "leadline_collector_dropped_total", source="spool_error") > 0
    assert not [c for c in unretrieved if "never retrieved" in str(c.get("message"))]
