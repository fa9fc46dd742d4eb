"""The collector's disk spool: where events wait, durably, while Kafka is slow or down.

Append-only segment files. Each record is ``length (u32) | crc32 (u32) | body`` with
``body = id_len (u16) | event id | key_len (u16) | key | value``. Appends are group-committed: concurrent
callers share one write and one fsync, so a burst of form posts costs one disk flush rather than one each. A
crash can leave a torn last record; :meth:`Spool.open` finds it by length or CRC and truncates it away, keeping
every record before it. Replay reads sealed segments oldest first and remembers how far it got in a small
``.done`` file per segment, so a replay interrupted half-way does not send its first half twice.
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
        self.refusing = False  # an append was refused for lack of room; cleared when replay frees space

    # --- lifecycle -------------------------------------------------------------------------------------------
    def open(self) -> int:
        """Create the directory, repair a torn tail, start a fresh active segment; returns records waiting."""
        self.directory.mkdir(parents=True, exist_ok=True)
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
        self._active = self.directory / f"{self._next_seq:016d}{SUFFIX}"
        self._next_seq += 1
        self._fd = os.open(self._active, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._active_size = 0
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
        self._active = None

    # --- writing ---------------------------------------------------------------------------------------------
    @property
    def size_bytes(self) -> int:
        """Bytes on disk and pending: what counts against the cap."""
        return self._sealed_bytes + self._active_size + self._pending_bytes

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
        started(self._fd, "the spool")  # here, not in the writer thread, where it would only fail the flusher
        data = b"".join(encode_record(r) for r in records)
        if self.size_bytes + len(data) > self.max_bytes:
            self.refusing = True
            raise SpoolFull(f"spool full ({self.size_bytes} of {self.max_bytes} bytes)")
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
                    self._records -= sum(n for _, n, _ in batch)
                    for _, _, fut in batch:
                        if not fut.done():
                            fut.set_exception(SpoolFull(f"spool write failed: {exc}"))
                    continue
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

    def _write(self, data: bytes) -> None:
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
        os.close(self._fd)
        self._sealed_bytes += self._active_size
        self._start_segment()

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
        try:
            return int(self._done_file(segment).read_text())
        except (OSError, ValueError):
            return 0

    def read(self, segment: Path) -> list[tuple[int, Record]]:
        """The records of a sealed segment not yet replayed, with their end offsets."""
        data = segment.read_bytes()
        return list(scan(data, self.done_offset(segment)))

    def mark_done(self, segment: Path, offset: int, records: int = 0) -> None:
        """Remember replay progress (survives a crash, so a replay is never repeated from the start).

        ``records``: how many records up to ``offset`` were replayed now (for :attr:`records_waiting`).
        """
        self._records = max(0, self._records - records)
        tmp = self._done_file(segment).with_suffix(".tmp")
        tmp.write_text(str(offset))
        os.replace(tmp, self._done_file(segment))

    def remove(self, segment: Path) -> None:
        """Delete a fully replayed segment."""
        size = segment.stat().st_size
        segment.unlink()
        self._done_file(segment).unlink(missing_ok=True)
        self._started.pop(segment.name, None)
        self._sealed_bytes = max(0, self._sealed_bytes - size)
        self.refusing = False


def _received_at(record: Record, segment: Path) -> float:
    """When a spooled event was received (its envelope's ``received_at``); the segment's mtime if unreadable."""
    try:
        text = orjson.loads(record.value)["received_at"]
        return datetime.fromisoformat(text).timestamp()
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return segment.stat().st_mtime


def _fsync_dir(directory: Path) -> None:
    """Make a new file's directory entry durable too."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
