"""Where captured events go. Routes hand events to a :class:`Sink` and never see Kafka.

The skeleton has the Kafka sink alone; the disk spool in front of it (for Kafka outages) plugs in behind the
same interface.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from leadline_shared import kafka
from leadline_shared.events import RawEvent

log = logging.getLogger(__name__)


class SinkUnavailable(RuntimeError):
    """The event could not be accepted; the caller answers 503 and the client retries."""


class Sink(Protocol):
    """Accepts events for the raw topic."""

    async def store(self, event: RawEvent) -> None:
        """Accept one event (durable or queued for a batch, depending on the sink)."""

    async def is_healthy(self) -> bool:
        """Whether the sink can take events now (drives /readyz)."""


class KafkaSink:
    """Publishes raw events through an idempotent, acks=all producer, with a deadline on every publish.

    aiokafka's idempotent producer waits forever for a broker that is down, so the deadline is ours.
    """

    def __init__(self, bootstrap: str, topic: str, *, timeout: float, linger_ms: int) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._timeout = timeout
        self._linger_ms = linger_ms
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        """Connect the producer."""
        self._producer = kafka.producer(self._bootstrap, linger_ms=self._linger_ms)
        await self._producer.start()

    async def stop(self) -> None:
        """Flush what is queued (bounded by the deadline) and disconnect."""
        if self._producer is None:
            return
        producer, self._producer = self._producer, None
        try:
            await asyncio.wait_for(producer.stop(), self._timeout * 5)
        except TimeoutError:
            log.error("producer did not flush before the deadline")

    def _started(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("KafkaSink used before start()")
        return self._producer

    async def store(self, event: RawEvent) -> None:
        """Queue the event in the producer's batch; raises :class:`SinkUnavailable` past the deadline."""
        producer = self._started()
        try:
            await asyncio.wait_for(
                producer.send(self._topic, event.to_json(), key=event.key()), self._timeout
            )
        except (TimeoutError, KafkaError) as exc:
            raise SinkUnavailable(str(exc) or type(exc).__name__) from exc

    async def is_healthy(self) -> bool:
        """Kafka answers."""
        return self._producer is not None and await kafka.broker_reachable(self._bootstrap)
