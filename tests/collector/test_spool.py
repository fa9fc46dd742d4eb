"""The disk spool keeps every accepted event through crashes: torn writes are cut, nothing before them is lost."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from leadline_collector import spool as spool_mod
from leadline_collector.spool import Record, Spool, SpoolFull, encode_record


def rec(i: int, key: str = "v1") -> Record:
    return Record(f"id-{i}", key.encode(), f'{{"n":{i}}}'.encode())


def all_records(sp: Spool) -> list[Record]:
    sp.seal()
    return [r for seg in sp.sealed() for _, r in sp.read(seg)]


async def test_appended_records_come_back_in_order_across_segments(tmp_path: Path) -> None:
    sp = Spool(tmp_path, max_bytes=10_000_000, segment_bytes=200)
    sp.open()
    for i in range(20):
        await sp.append([rec(i)])
    assert len(sp.segments()) >= 3
    assert [r.event_id for r in all_records(sp)] == [f"id-{i}" for i in range(20)]
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
    assert [r.event_id for r in all_records(again)] == [f"id-{i}" for i in range(5)]
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
    assert [r.event_id for r in all_records(again)] == ["id-0", "id-1"]
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
    sp.seal()
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
    assert len(all_records(sp)) == 200
    await sp.close()
