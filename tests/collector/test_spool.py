"""The disk spool keeps every accepted event through crashes: torn writes are cut, nothing before them is lost."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from leadline_collector import spool as spool_mod
from leadline_collector.spool import Record, Spool, SpoolFull, encode_record
from leadline_shared.service import NotStarted


def rec(i: int, key: str = "v1") -> Record:
    return Record(f"id-{i}", key.encode(), f'{{"n":{i}}}'.encode())


async def all_records(sp: Spool) -> list[Record]:
    await sp.seal()
    return [r for seg in sp.sealed() for _, r in sp.read(seg)]


async def test_appended_records_come_back_in_order_across_segments(tmp_path: Path) -> None:
    sp = Spool(tmp_path, max_bytes=10_000_000, segment_bytes=200)
    sp.open()
    for i in range(20):
        await sp.append([rec(i)])
    assert len(sp.segments()) >= 3
    assert [r.event_id for r in await all_records(sp)] == [f"id-{i}" for i in range(20)]
    await sp.close()


async def test_a_torn_last_record_is_truncated_and_earlier_records_survive(tmp_path: Path) -> None:
    sp = Spool(tmp_path, max_bytes=10_000_000)
    sp.open()
    await sp.append([rec(i) for i in range(5)])
    await sp.close()
    [segment] = sp.segments()
    whole = segment.stat().st_size
    with segment.open("ab") as fh:  # the process died half-way through writing record 5
        fh.write(encode_record(rec(5))[:9])

    again = Spool(tmp_path, max_bytes=10_000_000)
    assert again.open() == 5
    assert segment.stat().st_size == whole
    assert [r.event_id for r in await all_records(again)] == [f"id-{i}" for i in range(5)]
    await again.close()


async def test_a_record_with_a_bad_crc_ends_the_segment(tmp_path: Path) -> None:
    sp = Spool(tmp_path, max_bytes=10_000_000)
    sp.open()
    await sp.append([rec(i) for i in range(3)])
    await sp.close()
    [segment] = sp.segments()
    data = bytearray(segment.read_bytes())
    data[-3] ^= 0xFF  # a bit flipped in the last record's value
    segment.write_bytes(bytes(data))
    again = Spool(tmp_path, max_bytes=10_000_000)
    assert again.open() == 2
    assert [r.event_id for r in await all_records(again)] == ["id-0", "id-1"]
    await again.close()


async def test_the_size_cap_refuses_more_instead_of_dropping_silently(tmp_path: Path) -> None:
    sp = Spool(tmp_path, max_bytes=len(encode_record(rec(0))) * 3)
    sp.open()
    await sp.append([rec(0), rec(1), rec(2)])
    with pytest.raises(SpoolFull):
        await sp.append([rec(3)])
    await sp.close()


async def test_replay_progress_survives_a_restart(tmp_path: Path) -> None:
    sp = Spool(tmp_path, max_bytes=10_000_000)
    sp.open()
    await sp.append([rec(i) for i in range(6)])
    await sp.seal()
    [segment] = sp.sealed()
    records = sp.read(segment)
    sp.mark_done(segment, records[2][0])  # three replayed, then the process died
    await sp.close()
    again = Spool(tmp_path, max_bytes=10_000_000)
    assert again.open() == 3
    assert [r.event_id for _, r in again.read(segment)] == ["id-3", "id-4", "id-5"]
    again.remove(segment)
    assert again.sealed() == []
    await again.close()


async def test_concurrent_appends_share_fsyncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        nonlocal calls
        calls += 1
        real_fsync(fd)

    monkeypatch.setattr(spool_mod.os, "fsync", counting_fsync)
    sp = Spool(tmp_path, max_bytes=10_000_000)
    sp.open()
    calls = 0
    await asyncio.gather(*(sp.append([rec(i, key=f"v{i}")]) for i in range(200)))
    assert calls < 50, f"{calls} fsyncs for 200 appends: no group commit"
    assert len(await all_records(sp)) == 200
    await sp.close()


async def test_sealing_never_closes_the_file_under_a_write_in_flight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replay seals the active segment while visitors keep arriving. Closing the file while the writer thread
    is still writing loses that write (EBADF) — a loss the outage test once caught under load."""
    real_write, real_close = os.write, os.close
    writing = threading.Event()
    closed_mid_write: list[int] = []

    def slow_write(fd: int, data: Any) -> int:
        writing.set()
        time.sleep(0.003)  # a slow disk: sealing now meets this write in flight
        try:
            return real_write(fd, data)
        finally:
            writing.clear()

    def watched_close(fd: int) -> None:
        if writing.is_set():
            closed_mid_write.append(fd)
        real_close(fd)

    monkeypatch.setattr(spool_mod.os, "write", slow_write)
    monkeypatch.setattr(spool_mod.os, "close", watched_close)
    sp = Spool(tmp_path, max_bytes=10_000_000)
    sp.open()
    futures = []
    for i in range(60):
        futures.append(sp.append_nowait([rec(i)]))
        await asyncio.sleep(0.001)
        if i % 5 == 0:
            await sp.seal()
    await asyncio.gather(*futures)
    assert closed_mid_write == []
    assert [r.event_id for r in await all_records(sp)] == [f"id-{i}" for i in range(60)]
    await sp.close()


async def test_the_spool_counts_records_waiting_and_the_age_of_the_oldest(tmp_path: Path) -> None:
    """What the SRE's alert reads: records still waiting for Kafka, and how long the oldest has waited."""
    sp = Spool(tmp_path, max_bytes=10_000_000, segment_bytes=200)
    sp.open()
    assert (sp.records_waiting, sp.oldest_age()) == (0, 0.0)
    await sp.append([rec(i) for i in range(3)])
    await sp.append([rec(i) for i in range(3, 10)])
    assert sp.records_waiting == 10
    assert 0.0 <= sp.oldest_age() < 5.0
    assert sp.oldest_age(now=time.time() + 100) >= 100
    await sp.seal()
    for segment in sp.sealed():
        records = sp.read(segment)
        sp.mark_done(segment, records[-1][0], len(records))
        sp.remove(segment)
    assert (sp.records_waiting, sp.oldest_age()) == (0, 0.0)
    await sp.close()


async def test_a_reopened_spool_counts_what_a_previous_run_left_and_dates_it_by_receipt(
    tmp_path: Path,
) -> None:
    """After a restart the age comes from the events' own received_at, not from when the process started."""
    sp = Spool(tmp_path, max_bytes=10_000_000)
    sp.open()
    old = b'{"received_at":"2026-01-01T00:00:00.000+00:00"}'
    await sp.append([Record("a", b"k", old), Record("b", b"k", old)])
    await sp.close()
    again = Spool(tmp_path, max_bytes=10_000_000)
    assert again.open() == 2
    assert again.records_waiting == 2
    assert again.oldest_age(now=1767225600.0 + 60) == pytest.approx(60.0)
    await again.close()


async def test_a_spool_used_before_open_says_so_even_under_python_O(tmp_path: Path) -> None:
    """An assert said this before, and vanished under ``python -O`` (issue 11)."""
    sp = Spool(tmp_path, max_bytes=1000)
    with pytest.raises(NotStarted, match="before start"):
        sp.append_nowait([rec(1)])
