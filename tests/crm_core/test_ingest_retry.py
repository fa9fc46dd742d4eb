"""The consumer keeps a batch while PostgreSQL is unreachable and commits its offsets only once it is stored
(unit test: the database and the consumer are stand-ins)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from crm_core.builders import event
from leadline_crm import ingest
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

    async def flaky_write(conn: object, touches: list[ingest.Touch]) -> int:
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
    touches = [ingest.Touch.of(event(new_id())) for _ in range(4)]
    await ingestor._write(touches, [], {"tp": 5})
    assert attempts == [4, 4, 4]
    assert consumer.committed == [{"tp": 5}]
    assert ingestor.retries._value.get() == 2
    assert ingestor.written._value.get() == 4


async def test_other_errors_are_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(conn: object, touches: list[ingest.Touch]) -> int:
        raise ValueError("a bug")

    monkeypatch.setattr(ingest, "write_touches", broken)
    consumer = FakeConsumer()
    ingestor = ingest.Ingestor(
        bootstrap="unused:9092",
        topics=kafka.Topics.with_prefix("unit."),
        group_id="unit",
        pool=FakePool(),  # type: ignore[arg-type]
        registry=CollectorRegistry(),
        consumer=consumer,  # type: ignore[arg-type]
    )
    with pytest.raises(ValueError, match="a bug"):
        await ingestor._write([ingest.Touch.of(event(new_id()))], [], {"tp": 1})
    assert consumer.committed == []
