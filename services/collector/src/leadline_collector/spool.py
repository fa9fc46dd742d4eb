"""The collector's disk spool: where events wait, durably, while Kafka is slow or down.

Append-only segment files. Each record is ``length (u32) | crc32 (u32) | body`` with
``body = id_len (u16) | event id | key_len (u16) | key | value``. Appends are group-committed: concurrent
callers share one write and one fsync, so a burst of form posts costs one disk flush rather than one each. A
crash can leave a torn last record; :meth:`Spool.open` finds it by length or CRC and truncates it away, keeping
every record before it. Replay reads sealed segments oldest first and remembers how far it got in a small
``.done`` file per segment, so a replay interrupted half-way does not send its first half twice.

Replay must work on a full disk, since a full disk is exactly when it is needed most (issue 17: the progress was
written to a new ``.tmp`` file, which failed with ENOSPC and ended recovery). So the progress record has a fixed
size, is created with its segment while there is room, and is overwritten in place (no new block needed); the
progress is also kept in memory, so if the disk refuses even that, replay goes on and a fully sent segment is
deleted, which frees the space. The only cost of a progress record that could not be written is that a crash
before the segment is deleted resends its first records, which the event-id dedup downstream absorbs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import time
import zlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import orjson

from leadline_shared.service import started

log = logging.getLogger(__name__)
_HEAD = struct.Struct(">II")
_SHORT = struct.Struct(">H")
SUFFIX = ".seg"
# seconds: after a failed write, appends are refused this long before one is tried again
DISK_RETRY_EVERY = 1.0
_PROGRESS_DIGITS = 20  # a progress record: offset (20 digits) space crc32 of the digits (8 hex) newline


def _progress_record(offset: int) -> bytes:
    digits = f"{offset:0{_PROGRESS_DIGITS}d}".encode()
    return digits + f" {zlib.crc32(digits):08x}\n".encode()


def _parse_progress(text: bytes) -> int:
    """The offset in a progress record; 0 (replay the segment from its start) when it is torn or unreadable.

    A bare number is what versions before issue 17 wrote (atomically, by rename)."""
    fields = text.split()
    try:
        if len(fields) == 1:
            return int(fields[0])
        if len(fields) == 2 and zlib.crc32(fields[0]) == int(fields[1], 16):
            return int(fields[0])
    except ValueError:
        pass
    return 0


class SpoolFull(RuntimeError):
    """The spool reached its size cap; the caller answers 503 (forms) or counts a drop (pixels)."""


class Record(NamedTuple):
    """One spooled event: its id (for dedup), Kafka key and value.

    A named tuple: one is made per captured hit, and a frozen dataclass costs twice as much to build.
    """

    event_id: str
    key: bytes
    value: bytes


def encode_record(rec: Record) -> bytes:
    """The on-disk bytes of one record."""
    eid = rec.event_id.encode()
    body = b"".join((_SHORT.pack(len(eid)), eid, _SHORT.pack(len(rec.key)), rec.key, rec.value))
    return _HEAD.pack(len(body), zlib.crc32(body)) + body


def _decode_body(body: bytes) -> Record:
    (id_len,) = _SHORT.unpack_from(body, 0)
    eid = body[2 : 2 + id_len].decode()
    pos = 2 + id_len
    (key_len,) = _SHORT.unpack_from(body, pos)
    key = body[pos + 2 : pos + 2 + key_len]
    return Record(eid, key, body[pos + 2 + key_len :])


def scan(data: bytes, start: int = 0) -> Iterator[tuple[int, Record]]:
    """Yield (end offset, record) for each intact record from ``start``; stops at the first torn one."""
    pos = start
    while pos + _HEAD.size <= len(data):
        length, crc = _HEAD.unpack_from(data, pos)
        end = pos + _HEAD.size + length
        if end > len(data):
            return
        body = data[pos + _HEAD.size : end]
        if zlib.crc32(body) != crc:
            return
        try:
            record = _decode_body(body)
        except (struct.error, UnicodeDecodeError):
            return
        yield end, record
        pos = end


class Spool:
    """Segment files in one directory, with a size cap and group-committed appends."""

    def __init__(self, directory: Path, max_bytes: int, segment_bytes: int = 8 * 1024 * 1024) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self._fd: int | None = None
        self._active: Path | None = None
        self._active_size = 0
        self._sealed_bytes = 0
        self._next_seq = 0
        self._pending: list[tuple[bytes, int, asyncio.Future[None]]] = []
        self._records = 0  # records appended and not yet replayed (pending ones included)
        self._started: dict[str, float] = {}  # segment name -> wall time of its oldest waiting record
        self._pending_bytes = 0
        self._flusher: asyncio.Task[None] | None = None
        self._opened: bool | None = None  # None until open(): an append before it is a programming error
        self._progress: dict[str, int] = {}  # segment name -> replay offset (the record on disk may lag)
        self._progress_unrecorded: set[str] = set()  # segments whose progress the disk refused (logged)
        self._over_cap = False  # an append was refused by the size cap; cleared when replay frees space
        self._disk_failed = False  # the last write failed (ENOSPC, EIO): until a good write or freed space
        self._retry_at = 0.0  # meanwhile appends are refused until then (monotonic), then one is tried

    # --- lifecycle -------------------------------------------------------------------------------------------
    def open(self) -> int:
        """Create the directory, repair a torn tail, start a fresh active segment; returns records waiting."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._opened = True
        waiting = 0
        for path in self.segments():
            count = self._repair(path)
            waiting += count
            self._next_seq = max(self._next_seq, int(path.stem) + 1)
        self._sealed_bytes = sum(p.stat().st_size for p in self.segments())
        self._records = waiting
        self._start_segment()
        return waiting

    def _repair(self, path: Path) -> int:
        """Truncate a segment after its last intact record; returns how many records it holds unsent."""
        data = path.read_bytes()
        good, count = 0, 0
        for end, _ in scan(data):
            good, count = end, count + 1
        if good < len(data):
            log.warning(
                "spool segment had a torn tail; truncated",
                extra={"segment": path.name, "kept_bytes": good, "dropped_bytes": len(data) - good},
            )
            with path.open("r+b") as fh:
                fh.truncate(good)
                fh.flush()
                os.fsync(fh.fileno())
        if good == 0:
            path.unlink()
            self._done_file(path).unlink(missing_ok=True)
            return 0
        done = self.done_offset(path)
        waiting = [record for end, record in scan(data[:good]) if end > done]
        if waiting:
            self._started[path.name] = _received_at(waiting[0], path)
        return len(waiting)

    def _start_segment(self) -> None:
        """Open a fresh active segment and create its progress record (best effort: the disk may be full)."""
        active = self.directory / f"{self._next_seq:016d}{SUFFIX}"
        self._next_seq += 1
        self._fd = os.open(active, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._active, self._active_size = active, 0
        try:
            _write_in_place(self._done_file(active), _progress_record(0))
        except OSError:
            self._done_file(active).unlink(missing_ok=True)  # created lazily, if there is room then
        _fsync_dir(self.directory)

    async def close(self) -> None:
        """Finish pending appends and close the active segment (removed when empty)."""
        while self._flusher is not None:
            await asyncio.shield(self._flusher)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._active is not None and self._active_size == 0:
            self._active.unlink(missing_ok=True)
            self._done_file(self._active).unlink(missing_ok=True)
        self._active = None

    # --- writing ---------------------------------------------------------------------------------------------
    @property
    def size_bytes(self) -> int:
        """Bytes on disk and pending: what counts against the cap."""
        return self._sealed_bytes + self._active_size + self._pending_bytes

    @property
    def refusing(self) -> bool:
        """An append was refused for lack of room (the cap, or the disk itself); ``/readyz`` says 503 meanwhile."""
        return self._over_cap or self._disk_failed

    @property
    def records_waiting(self) -> int:
        """Records accepted into the spool and not yet replayed to Kafka."""
        return self._records

    def oldest_age(self, now: float | None = None) -> float:
        """Seconds since the oldest segment still waiting got its first record (0 when nothing waits).

        Per segment, not per record: a segment replayed half-way counts from its first record, so this can
        overstate the wait by up to one segment's fill time; it never understates it.
        """
        if not self._started or self._records == 0:
            return 0.0
        return max(0.0, (time.time() if now is None else now) - min(self._started.values()))

    @property
    def active_empty(self) -> bool:
        """Nothing written or pending in the active segment."""
        return self._active_size == 0 and not self._pending and self._flusher is None

    def append_nowait(self, records: list[Record]) -> asyncio.Future[None]:
        """Queue records for the next group commit; the future resolves once they are fsync'd."""
        # here, not in the writer thread, where it would only fail the flusher
        started(self._opened, "the spool")
        data = b"".join(encode_record(r) for r in records)
        if self.size_bytes + len(data) > self.max_bytes:
            self._over_cap = True
            raise SpoolFull(f"spool full ({self.size_bytes} of {self.max_bytes} bytes)")
        if self._disk_failed and time.monotonic() < self._retry_at:  # refused now, not answered and then lost
            raise SpoolFull("spool disk full or failing")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((data, len(records), fut))
        self._pending_bytes += len(data)
        self._records += len(records)
        if self._flusher is None:
            self._flusher = asyncio.ensure_future(self._flush_loop())
        return fut

    async def append(self, records: list[Record]) -> None:
        """Append records durably: returns once they are on disk (fsync'd)."""
        await self.append_nowait(records)

    async def _flush_loop(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                size = sum(len(d) for d, _, _ in batch)
                self._pending_bytes -= size
                try:
                    await asyncio.to_thread(self._write, b"".join(d for d, _, _ in batch))
                except OSError as exc:
                    self._write_failed(exc)
                    self._records -= sum(n for _, n, _ in batch)
                    for _, _, fut in batch:
                        if not fut.done():
                            fut.set_exception(SpoolFull(f"spool write failed: {exc.strerror}"))
                    continue
                self._disk_failed = False
                self._active_size += size
                if self._active is not None:
                    self._started.setdefault(self._active.name, time.time())
                for _, _, fut in batch:
                    if not fut.done():
                        fut.set_result(None)
                if self._active_size >= self.segment_bytes:
                    self._seal_now()  # the writer itself: nothing else is writing
        finally:
            self._flusher = None

    def _write_failed(self, exc: OSError) -> None:
        """Cut what a failed write left half-written, so records appended once there is room are readable.

        (A torn record in the middle of a segment would end its replay there, losing every record after it.)
        Shrinking a file needs no free space."""
        if not self._disk_failed:
            log.error("spool write failed; refusing events until it has room", extra={"error": exc.strerror})
        self._disk_failed = True
        self._retry_at = time.monotonic() + DISK_RETRY_EVERY
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, self._active_size)
            except OSError as cut:
                log.error("spool could not cut a failed write", extra={"error": cut.strerror})

    def _write(self, data: bytes) -> None:
        if self._fd is None:  # starting the segment failed before (a full disk): try again now
            self._start_segment()
        fd = started(self._fd, "the spool")
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)

    # --- reading and replay ----------------------------------------------------------------------------------
    def segments(self) -> list[Path]:
        """Every segment file, oldest first (the active one last)."""
        return sorted(self.directory.glob(f"*{SUFFIX}"))

    def _seal_now(self) -> None:
        """Close the active segment and start a new one; only while no write is in flight."""
        if self._active_size == 0 or self._fd is None:
            return
        fd, self._fd, self._active = self._fd, None, None
        os.close(fd)
        self._sealed_bytes += self._active_size
        self._active_size = 0
        try:
            self._start_segment()
        except OSError as exc:  # the next write tries again; replay of the sealed ones must go on regardless
            log.error("spool could not start a new segment", extra={"error": exc.strerror})

    async def seal(self) -> None:
        """Close the active segment (if it holds anything) so replay can read it whole.

        Waits for a group commit in flight first: closing the file under the writer thread would lose that
        write. Records queued meanwhile go to the next segment, after this one, so order is kept.
        """
        while self._flusher is not None:
            await asyncio.shield(self._flusher)
        self._seal_now()

    def sealed(self) -> list[Path]:
        """Segments that are complete and waiting for replay, oldest first."""
        return [p for p in self.segments() if p != self._active]

    def _done_file(self, segment: Path) -> Path:
        return segment.with_suffix(".done")

    def done_offset(self, segment: Path) -> int:
        """How far replay of ``segment`` got (bytes)."""
        if segment.name in self._progress:
            return self._progress[segment.name]
        try:
            return _parse_progress(self._done_file(segment).read_bytes())
        except OSError:
            return 0

    def read(self, segment: Path) -> list[tuple[int, Record]]:
        """The records of a sealed segment not yet replayed, with their end offsets."""
        data = segment.read_bytes()
        return list(scan(data, self.done_offset(segment)))

    def mark_done(self, segment: Path, offset: int, records: int = 0) -> None:
        """Remember replay progress (survives a crash, so a replay is never repeated from the start).

        ``records``: how many records up to ``offset`` were replayed now (for :attr:`records_waiting`).
        Needs no free space: the record is overwritten in place. If the disk refuses even that, the progress
        is kept in memory only (logged once per segment) and replay goes on; deleting the segment frees space.
        """
        self._records = max(0, self._records - records)
        self._progress[segment.name] = offset
        try:
            _write_in_place(self._done_file(segment), _progress_record(offset))
        except OSError as exc:
            if segment.name not in self._progress_unrecorded:
                self._progress_unrecorded.add(segment.name)
                log.warning(
                    "spool replay progress kept in memory only (a crash now would resend this segment's start)",
                    extra={"segment": segment.name, "error": exc.strerror},
                )

    def remove(self, segment: Path) -> None:
        """Delete a fully replayed segment."""
        size = segment.stat().st_size
        segment.unlink()
        self._done_file(segment).unlink(missing_ok=True)
        segment.with_suffix(".tmp").unlink(missing_ok=True)  # left by versions before issue 17
        self._progress.pop(segment.name, None)
        self._progress_unrecorded.discard(segment.name)
        self._started.pop(segment.name, None)
        self._sealed_bytes = max(0, self._sealed_bytes - size)
        self._over_cap = self._disk_failed = False


def _received_at(record: Record, segment: Path) -> float:
    """When a spooled event was received (its envelope's ``received_at``); the segment's mtime if unreadable."""
    try:
        text = orjson.loads(record.value)["received_at"]
        return datetime.fromisoformat(text).timestamp()
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return segment.stat().st_mtime


def _write_in_place(path: Path, data: bytes) -> None:
    """Overwrite the start of ``path`` (created if missing) with ``data`` and fsync it.

    Same size each time, so once the file exists this allocates nothing: it works on a full disk."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        if os.pwrite(fd, data, 0) != len(data):
            raise OSError(28, "short write of a spool progress record")
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    """Make a new file's directory entry durable too."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
