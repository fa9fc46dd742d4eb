"""An in-memory :class:`leadline_collector.sink.Sink` for route tests: what a route answers and the event it
builds, without a broker.

It is a test double of the collector's own interface, not of Kafka: the real sink (the publisher and its spool)
is tested against a real broker (test_outage*.py, test_kafka_down.py, test_shutdown.py, test_spool.py), and each
route keeps one integration test that proves its event reaches the topic.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from leadline_collector.sink import Publishable, SinkUnavailable
from leadline_collector.siteconfig_store import SiteConfigStore
from leadline_shared import siteconfig
from leadline_shared.capture import batches
from leadline_shared.events import RawEvent


@dataclass
class MemorySink:
    """Keeps every event it accepts, in order; told to, it reports itself unhealthy or refuses events."""

    events: list[RawEvent] = field(default_factory=list)
    """Every event accepted, as a :class:`RawEvent` (one a route encoded already is decoded from its JSON, as the
    raw topic's readers decode it). A Segment batch's or a beacon's record stands for the events the enricher splits it into
    (:func:`leadline_shared.capture.batches.split`): those are here, in its place."""
    batch_records: list[RawEvent] = field(default_factory=list)
    """The Segment batch and beacon records accepted, as published."""
    healthy: bool = True
    unavailable: bool = False
    """Refuse every event with :class:`SinkUnavailable`, as the publisher does when its spool is full."""
    room: int | None = None
    """How many more events it takes before refusing the rest, as a nearly full spool does (None: no limit)."""
    durable: list[bool] = field(default_factory=list)
    """For each accepted event, whether the route asked for it to be durable."""
    backlog: asyncio.Future[None] | None = None
    """What :meth:`throttle` gives: set a future to make beacons wait for it, as the publisher's backlog does."""
    started: bool = False
    stopped: bool = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def store(self, event: Publishable, durable: bool = False) -> None:
        self._accept(event, durable)

    def store_nowait(self, event: Publishable) -> None:
        self._accept(event, False)

    def store_all_nowait(self, events: Sequence[Publishable]) -> None:
        if self.unavailable or (
            self.room is not None and len(events) > self.room
        ):  # all or none, as the publisher
            raise SinkUnavailable("spool full (told to refuse)")
        for event in events:
            self._accept(event, False)

    def store_durable(self, events: Sequence[Publishable]) -> asyncio.Future[None]:
        for event in events:
            self._accept(event, True)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def throttle(self) -> asyncio.Future[None] | None:
        return self.backlog

    async def is_healthy(self) -> bool:
        return self.healthy

    def _accept(self, event: Publishable, durable: bool) -> None:
        if self.unavailable or self.room == 0:
            raise SinkUnavailable("spool full (told to refuse)")
        if self.room is not None:
            self.room -= 1
        raw = event if isinstance(event, RawEvent) else RawEvent.from_json(event.to_json())
        if raw.type not in batches.TYPES:
            self.events.append(raw)
            self.durable.append(durable)
            return
        self.batch_records.append(raw)
        for made in batches.split(raw):  # what the enricher publishes for the record (its split)
            self.events.append(made.decoded())
            self.durable.append(durable)

    def messages(self) -> list[dict[str, Any]]:
        """The events as the raw topic would carry them (their JSON), in the order they were accepted."""
        return [orjson.loads(event.to_json()) for event in self.events]

    def records(self) -> list[tuple[bytes, bytes]]:
        """``(key, value)`` as the publisher would write them to the raw topic."""
        return [(event.key(), event.to_json()) for event in self.events]


def sites_in_memory(snapshot: Path, entries: list[siteconfig.Entry]) -> SiteConfigStore:
    """A site configuration holding ``entries``, filled the way records from the config topic fill it."""
    store = SiteConfigStore(bootstrap="", topic="", snapshot=snapshot)
    for entry in entries:
        store.apply(*siteconfig.encode(entry))
    return store
