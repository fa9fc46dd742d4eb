"""Publishing forms, ads and write keys to the compacted ``crm.config.v1`` topic, which the collector follows.

The database is the truth; the topic is a copy. A write through the API is committed first and then published;
when Kafka does not acknowledge in time the entry stays pending and a background loop retries it until it goes
through (a compacted topic makes repeats harmless). At start-up every entry is published again, so a change
made while the process died between commit and publish still reaches the collector.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from aiohttp import web
from aiokafka import AIOKafkaProducer

from leadline_shared import siteconfig

log = logging.getLogger(__name__)


@dataclass
class ConfigPublisher:
    """Entries by topic key, sent in order; ``None`` is a tombstone."""

    producer: AIOKafkaProducer
    topic: str
    timeout: float = 5.0
    pending: dict[str, bytes | None] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    async def put(self, entry: siteconfig.Entry) -> bool:
        """Publish an entry; True once Kafka acknowledged it (else it is retried in the background)."""
        key, value = siteconfig.encode(entry)
        return await self._send(key.decode(), value)

    async def tombstone(self, key: str) -> bool:
        """Delete an entry at the collector."""
        return await self._send(key, None)

    async def put_all(self, entries: list[siteconfig.Entry]) -> bool:
        """Publish many entries (start-up)."""
        for entry in entries:
            key, value = siteconfig.encode(entry)
            self.pending[key.decode()] = value
        return await self.flush()

    async def _send(self, key: str, value: bytes | None) -> bool:
        self.pending[key] = value
        return await self.flush()

    async def flush(self) -> bool:
        """Send everything pending; False (and wake the retry loop) when Kafka did not answer in time."""
        async with self._lock:
            try:
                async with asyncio.timeout(self.timeout):
                    while self.pending:
                        key, value = next(iter(self.pending.items()))
                        await self.producer.send_and_wait(self.topic, value, key=key.encode())
                        if self.pending.get(key, b"") == value:
                            del self.pending[key]
            except Exception as exc:
                log.warning(
                    "config publish delayed",
                    extra={"pending": len(self.pending), "error": type(exc).__name__},
                )
                self._wake.set()
                return False
        return True

    async def retry_forever(self, interval: float = 2.0) -> None:
        """Retry pending entries until cancelled."""
        while True:
            await self._wake.wait()
            await asyncio.sleep(interval)
            if await self.flush():
                self._wake.clear()

    async def healthy(self) -> bool:
        """Ready while nothing is stuck pending."""
        return not self.pending


PUBLISHER = web.AppKey("config_publisher", ConfigPublisher)
