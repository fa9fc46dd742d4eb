"""The consumer keeps a batch while PostgreSQL is unreachable and commits its offsets only once it is stored
(unit test: the database and the consumer are stand-ins)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from crm_core.builders import event
from leadline_crm.ingest import consumer as ingest
from leadline_crm.ingest.touch import Touch
from leadline_shared import kafka
from leadline_shared.ids import new_id


class FakePool:
    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[None]:
        yield None


class FakeConsumer:
    def __init__(self) -> None:
        self.committed: list[dict[Any, int]] = []

    async def commit(self, offsets: dict[Any, int]) -> None:
        self.committed.append(offsets)


async def test_a_batch_is_retried_until_postgres_answers_and_only_then_committed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempts: list[int] = []

    async def flaky_write(conn: object, touches: list[Touch]) -> int:
        attempts.append(len(touches))
        if len(attempts) < 3:
            raise ConnectionRefusedError("PostgreSQL is down")
        return len(touches)

    monkeypatch.setattr(ingest, "write_touches", flaky_write)
    consumer = FakeConsumer()
    ingestor = ingest.Ingestor(
        bootstrap="unused:9092",
        topics=kafka.Topics.with_prefix("unit."),
        group_id="unit",
        pool=FakePool(),  # type: ignore[arg-type]
        registry=CollectorRegistry(),
        writers=1,
        retry_delay=0.01,
        consumer=consumer,  # type: ignore[arg-type]
    )
    touches = [Touch.of(event(new_id())) for _ in range(4)]
    await ingestor._write(touches, [], {"tp": 5})
    assert attempts == [4, 4, 4]
    assert consumer.committed == [{"tp": 5}]
    assert ingestor.retries._value.get() == 2
    assert ingestor.written._value.get() == 4


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes | None, dict[str, bytes]]] = []

    async def send(
        self, topic: str, value: bytes, key: bytes | None = None, headers: list[tuple[str, bytes]] = ()
    ) -> asyncio.Future[None]:
        self.sent.append((topic, value, key, dict(headers)))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


async def test_an_event_that_fails_alone_is_dead_lettered_and_the_rest_are_stored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Any failure but an unreachable database is the events' own: halves are written apart until the event
    that fails stands alone; it goes to the DLQ, the others are stored, and only then are offsets committed."""
    touches = [Touch.of(event(new_id())) for _ in range(5)]
    bad = touches[3].event_id
    attempts: list[int] = []

    async def picky(conn: object, batch: list[Touch]) -> int:
        attempts.append(len(batch))
        if any(t.event_id == bad for t in batch):
            raise ValueError("a bug this event triggers")
        return len(batch)

    monkeypatch.setattr(ingest, "write_touches", picky)
    consumer, producer = FakeConsumer(), FakeProducer()
    ingestor = ingest.Ingestor(
        bootstrap="unused:9092",
        topics=kafka.Topics.with_prefix("unit."),
        group_id="unit",
        pool=FakePool(),  # type: ignore[arg-type]
        registry=CollectorRegistry(),
        writers=1,
        consumer=consumer,  # type: ignore[arg-type]
        producer=producer,  # type: ignore[arg-type]
    )
    touches[3].key = b"k"
    await ingestor._write(touches, [], {"tp": 1})
    assert ingestor.written._value.get() == 4
    [(topic, value, key, headers)] = producer.sent
    assert (topic, key) == ("unit.capture.dlq.v1", b"k")
    assert value == touches[3].json.encode()
    assert headers["reason"] == b"ValueError: a bug this event triggers"
    assert (headers["stage"], headers["service"], headers["topic"]) == (
        b"store",
        b"crm-core",
        b"capture.enriched.v1",
    )
    assert consumer.committed == [{"tp": 1}]
    assert attempts[0] == 5
    assert max(attempts[1:]) < 5
