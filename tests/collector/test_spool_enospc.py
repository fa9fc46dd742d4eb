"""The spool on a disk that is really full (ENOSPC), without Kafka: replay still makes progress and frees space,
and a write the disk cut short leaves nothing that hides later records (issue 17).

Each test mounts a 1 MiB tmpfs of its own (tests/collector/small_disk.py) and fills it with spool records.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.small_disk import small_disk_at
from leadline_collector import spool as spool_mod
from leadline_collector.spool import Record, Spool, SpoolFull

pytestmark = pytest.mark.integration  # mounts a filesystem: root, like the drills


def rec(i: int) -> Record:
    return Record(f"id-{i}", b"v1", b'{"pad":"' + b"x" * 900 + b'"}')


@pytest.fixture
def disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setattr(spool_mod, "DISK_RETRY_EVERY", 0.0)  # try every append at once: no 1 s refusals
    with small_disk_at(tmp_path, 1) as mount:
        yield mount


async def fill(sp: Spool) -> int:
    """Append records one by one until the disk refuses one; how many were stored."""
    for i in range(10_000):
        try:
            await sp.append([rec(i)])
        except SpoolFull:
            return i
    raise AssertionError("the disk never filled")


async def test_replay_on_a_full_disk_records_progress_and_frees_space(disk: Path) -> None:
    sp = Spool(disk, max_bytes=100_000_000, segment_bytes=100_000_000)
    sp.open()
    stored = await fill(sp)
    assert stored > 100
    assert sp.refusing, "the disk itself is full: readiness should say so"
    await sp.seal()
    [segment] = sp.sealed()
    records = sp.read(segment)
    assert len(records) == stored
    sp.mark_done(segment, records[9][0], 10)  # before issue 17's fix: ENOSPC here ended recovery
    assert [r.event_id for _, r in sp.read(segment)][:1] == ["id-10"]
    assert Spool(disk, max_bytes=100_000_000).done_offset(segment) == records[9][0], "kept on disk too"
    sp.mark_done(segment, records[-1][0], len(records) - 10)
    sp.remove(segment)
    assert not sp.refusing
    await sp.append([rec(-1)])  # the space is back
    assert sp.records_waiting == 1
    await sp.close()


async def test_a_write_the_full_disk_cut_short_hides_no_later_record(disk: Path) -> None:
    (disk / "ballast").write_bytes(b"\0" * 300_000)  # freed later, as an operator would
    sp = Spool(disk, max_bytes=100_000_000, segment_bytes=100_000_000)
    sp.open()
    stored = await fill(sp)
    with pytest.raises(SpoolFull):  # a bigger write: part of it fits, the rest fails
        await sp.append([rec(20_000 + i) for i in range(50)])
    (disk / "ballast").unlink()
    await sp.append([rec(30_000)])  # acknowledged once there is room: it must be replayable
    await sp.seal()
    ids = [r.event_id for segment in sp.sealed() for _, r in sp.read(segment)]
    assert len(ids) == stored + 1
    assert ids[-1] == "id-30000"
    await sp.close()
