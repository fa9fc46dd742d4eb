"""The collector's view of the sites it serves: forms, affiliate ads and write keys from ``crm.config.v1``.

crm-core publishes every entry to that compacted topic; the collector reads it whole at start and follows it
after, so a change is live within a second or so. The current view is also written to a local snapshot file,
so a collector that starts while Kafka is down still knows its forms and ads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from leadline_shared import siteconfig
from leadline_shared.service import cancel_and_wait
from leadline_shared.siteconfig import AdConfig, FormConfig, SourceConfig

log = logging.getLogger(__name__)


@dataclass
class SiteConfigStore:
    """Entries by key, kept current from the config topic."""

    bootstrap: str
    topic: str
    snapshot: Path
    entries: dict[str, siteconfig.Entry] = field(default_factory=dict)
    caught_up: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _dirty: bool = False

    # --- lookups used by the routes --------------------------------------------------------------------------
    def form(self, key: str) -> FormConfig | None:
        """The form registered under ``key``."""
        entry = self.entries.get(f"form:{key}")
        return entry if isinstance(entry, FormConfig) else None

    def ad(self, affiliate_id: str, ad_id: str) -> AdConfig | None:
        """The affiliate's ad, with the only landing URL its clicks may go to."""
        entry = self.entries.get(f"ad:{affiliate_id}/{ad_id}")
        return entry if isinstance(entry, AdConfig) else None

    def source(self, write_key: str) -> SourceConfig | None:
        """The site behind a Segment write key."""
        entry = self.entries.get(f"source:{write_key}")
        return entry if isinstance(entry, SourceConfig) else None

    # --- following the topic ---------------------------------------------------------------------------------
    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """Apply one topic record (a tombstone removes the entry); bad records are logged and skipped."""
        if key is None:
            return
        try:
            name, entry = siteconfig.decode(key, value)
        except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
            log.warning(
                "bad config entry skipped",
                extra={"key": key[:100].decode(errors="replace"), "error": str(exc)},
            )
            return
        if entry is None:
            self.entries.pop(name, None)
        else:
            self.entries[name] = entry
        self._dirty = True

    async def start(self, wait: float = 5.0) -> None:
        """Load the snapshot, start following the topic, and wait up to ``wait`` s for the first catch-up.

        Only a collector with no snapshot waits: one that has its configuration on disk serves from it at once
        and takes the topic's changes as they come, so a restart during a Kafka outage answers right away
        instead of after ``wait`` seconds (issue 17).
        """
        if self._load_snapshot():
            wait = 0.0
        self._task = asyncio.ensure_future(self._follow())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.caught_up.wait(), wait)
        if not self.caught_up.is_set():
            log.warning(
                "config topic not read yet; serving from the snapshot", extra={"entries": len(self.entries)}
            )

    async def stop(self) -> None:
        """Stop following and write the snapshot."""
        if self._task is not None:
            await cancel_and_wait(self._task)
        self._write_snapshot()

    async def _follow(self) -> None:
        while True:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap,
                group_id=None,
                enable_auto_commit=False,
                isolation_level="read_committed",
            )
            try:
                await consumer.start()
                await self._read(consumer)
            except (KafkaError, OSError) as exc:
                log.warning("config topic unreadable; retrying", extra={"error": type(exc).__name__})
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()
            await asyncio.sleep(2.0)

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        partitions = consumer.partitions_for_topic(self.topic) or await self._partitions(consumer)
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    self.apply(record.key, record.value)
            if not self.caught_up.is_set() and all([await consumer.position(tp) >= ends[tp] for tp in tps]):
                self.caught_up.set()
                log.info("config loaded", extra={"entries": len(self.entries)})
            if self._dirty:
                self._write_snapshot()

    async def _partitions(self, consumer: AIOKafkaConsumer) -> set[int]:
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(self.topic)
        if not partitions:
            raise KafkaError(f"config topic {self.topic} not found")
        return set(partitions)

    def _load_snapshot(self) -> bool:
        """Fill the entries from the snapshot file; False when there is none (or it is unreadable)."""
        try:
            data = orjson.loads(self.snapshot.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return False
        for key, value in data.items():
            self.apply(key.encode(), orjson.dumps(value))
        self._dirty = False
        log.info("config snapshot loaded", extra={"entries": len(self.entries)})
        return True

    def _write_snapshot(self) -> None:
        if not self._dirty:
            return
        self.snapshot.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.snapshot.with_suffix(".tmp")
        doc = {key: orjson.loads(siteconfig.encode(entry)[1]) for key, entry in self.entries.items()}
        tmp.write_bytes(orjson.dumps(doc))
        os.replace(tmp, self.snapshot)
        self._dirty = False
