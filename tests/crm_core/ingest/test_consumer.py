"""The running consumer: events and identity changes from Kafka, poison messages dead-lettered without blocking."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from crm_core.builders import event, form
from leadline_crm.ingest.touch import Touch
from leadline_shared import kafka
from leadline_shared.events import EventError, IdentityChange, utc_now_iso
from leadline_shared.ids import new_id
from support import read_topic

pytestmark = pytest.mark.integration


async def until(
    conn: asyncpg.Connection, sql: str, *args: object, expect: object, timeout: float = 20
) -> None:
    async with asyncio.timeout(timeout):
        while await conn.fetchval(sql, *args) != expect:
            await asyncio.sleep(0.1)


async def test_a_merge_on_the_identity_topic_repoints_history_and_poison_is_dead_lettered(
    client: TestClient, kafka_bootstrap: str, topics: kafka.Topics, pg_dsn: str, schema: str
) -> None:
    anon, known = new_id(), new_id()
    good = [
        event(anon, minutes_ago=3),
        event(anon, "ad_click", minutes_ago=2),
        form(known, email="k@example.com"),
    ]
    poison = [
        b"not json",
        b'{"event_id": "x", "type": "page_view"}',
    ]
    nul = event(anon, minutes_ago=1)  # NUL cannot be stored: kept without it (events.storable), not refused
    producer = kafka.producer(kafka_bootstrap)
    await producer.start()
    try:
        for p in poison:
            await producer.send_and_wait(topics.enriched, p, key=b"poison")
        await producer.send_and_wait(topics.enriched, nul.to_json().replace(b'"v-', b'"\\u0000'), key=b"nul")
        for e in good:
            await producer.send_and_wait(topics.enriched, e.to_json(), key=e.person_id.encode())
        conn = await asyncpg.connect(pg_dsn, server_settings={"search_path": schema})
        try:
            await until(conn, "SELECT count(*) FROM touchpoints", expect=4)
            stored = "SELECT anon_id FROM touchpoints WHERE event_id = $1"
            assert await conn.fetchval(stored, nul.event_id) == anon[:8]
            merge = IdentityChange(
                change_id=new_id(), kind="merge", person_id=known, at=utc_now_iso(), merged=[anon]
            )
            await producer.send_and_wait(topics.identity_changes, merge.to_json(), key=merge.key())
            await until(conn, "SELECT count(*) FROM touchpoints WHERE person_id = $1", known, expect=4)
            assert await conn.fetchval("SELECT stage FROM persons WHERE person_id = $1", known) == "prospect"
            assert await conn.fetchval("SELECT count(*) FROM persons WHERE person_id = $1", anon) == 0
        finally:
            await conn.close()
    finally:
        await producer.stop()
    metrics = await (await client.get("/metrics")).text()
    assert "leadline_crm_events_invalid_total 2.0" in metrics
    assert 'leadline_crm_dead_letters_total{reason="invalid"} 2.0' in metrics
    dead = await read_topic(kafka_bootstrap, topics.dlq, 2)
    assert [v for _, v, _ in dead] == poison
    assert "leadline_crm_identity_changes_applied_total 1.0" in metrics


@pytest.mark.parametrize(
    "raw",
    [
        b"[]",
        b'{"event_id": "e", "person_id": "nope", "type": "page_view", "source": "pixel", "received_at": "2026-01-01T00:00:00Z"}',
        b'{"event_id": "e", "person_id": "01900000-0000-7000-8000-000000000000", "type": "page_view", "source": "pixel"}',
        b'{"event_id": "'
        + b"e" * 300
        + b'", "person_id": "01900000-0000-7000-8000-000000000000", "type": "page_view", "source": "pixel", "received_at": "2026-01-01T00:00:00Z"}',
        b'{"event_id": "e", "person_id": "01900000-0000-7000-8000-00000000000g", "type": "page_view", "source": "pixel", "received_at": "2026-01-01T00:00:00Z"}',
    ],
)
def test_events_that_would_fail_a_whole_batch_are_refused_one_by_one(raw: bytes) -> None:
    with pytest.raises(EventError):
        Touch.parse(raw)
