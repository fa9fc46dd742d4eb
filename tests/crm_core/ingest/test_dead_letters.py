"""Nothing crm-core is given is dropped silently (issue 11): what it cannot decode or store goes to capture.dlq.v1
with its reason, its batch-mates are stored, the loop goes on, and `leadline dlq replay` puts each letter back
on the topic it came from. Real broker, real database."""

from __future__ import annotations

import asyncio

import asyncpg
import orjson
import pytest
from aiohttp.test_utils import TestClient

from crm_core.builders import event, form
from leadline_shared import cli, kafka
from leadline_shared.ids import new_id
from support import read_topic, topic_is_quiet

pytestmark = pytest.mark.integration

OUT_OF_RANGE = "0001-01-01T00:00:00+14:00"
"""A client clock Python parses but cannot move to UTC (OverflowError): an input nobody foresaw."""


async def until(
    conn: asyncpg.Connection, sql: str, *args: object, expect: object, timeout: float = 20
) -> None:
    async with asyncio.timeout(timeout):
        while await conn.fetchval(sql, *args) != expect:
            await asyncio.sleep(0.1)


async def produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    """Send all messages at once, so that crm-core most likely takes them in one batch."""
    producer = kafka.producer(bootstrap, linger_ms=50)
    await producer.start()
    try:
        sent = [await producer.send(topic, value, key=key) for key, value in messages]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def poison(person_id: str) -> bytes:
    doc = orjson.loads(event(person_id).to_json())
    doc["occurred_at"] = OUT_OF_RANGE
    return orjson.dumps(doc)


async def test_a_poison_event_is_dead_lettered_its_batch_mates_are_stored_and_the_loop_goes_on(
    client: TestClient,
    kafka_bootstrap: str,
    topics: kafka.Topics,
    pg_dsn: str,
    schema: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pid = new_id()
    key = pid.encode()
    bad = poison(pid)
    batch = [
        (key, event(pid, minutes_ago=3).to_json()),
        (key, bad),
        (key, form(pid, email="mate@example.com", name="Mae Mate").to_json()),
        (b"junk", b"{not json"),
        (key, event(pid, minutes_ago=1).to_json()),
    ]
    await produce(kafka_bootstrap, topics.enriched, batch)
    conn = await asyncpg.connect(pg_dsn, server_settings={"search_path": schema})
    try:
        await until(conn, "SELECT count(*) FROM touchpoints WHERE person_id = $1", pid, expect=3)
        assert await conn.fetchval("SELECT first_name FROM persons WHERE person_id = $1", pid) == "Mae"
        dead = {value: (k, headers) for k, value, headers in await read_topic(kafka_bootstrap, topics.dlq, 2)}
        assert set(dead) == {bad, b"{not json"}
        k, headers = dead[bad]
        assert k == key
        assert (headers["service"], headers["stage"], headers["topic"]) == (
            b"crm-core",
            b"store",
            b"capture.enriched.v1",
        )
        assert headers["reason"].startswith(b"OverflowError")
        assert headers["first_seen"]
        assert dead[b"{not json"][1]["stage"] == b"decode"
        metrics = await (await client.get("/metrics")).text()
        assert 'leadline_crm_dead_letters_total{reason="unstorable"} 1.0' in metrics
        assert 'leadline_crm_dead_letters_total{reason="invalid"} 1.0' in metrics

        later = event(pid)  # the loop is still running
        await produce(kafka_bootstrap, topics.enriched, [(key, later.to_json())])
        await until(conn, "SELECT count(*) FROM touchpoints WHERE event_id = $1", later.event_id, expect=1)
        assert (await client.get("/readyz")).status == 200

        # replayed, the crm-core letters go back to capture.enriched.v1 (same key) and crm-core takes them again
        for name, value in {
            "LEADLINE_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "LEADLINE_TOPIC_PREFIX": topics.raw.removesuffix("capture.raw.v1"),
        }.items():
            monkeypatch.setenv(name, value)
        assert await asyncio.to_thread(cli.main, ["dlq", "replay", "--stage", "crm-core"]) == 0
        back = await read_topic(kafka_bootstrap, topics.enriched, len(batch) + 3)
        replayed = {(k, v) for k, v, h in back if "replayed_from" in h}
        assert replayed == {(key, bad), (b"junk", b"{not json")}
        assert len(await read_topic(kafka_bootstrap, topics.dlq, 4)) == 4  # still poison: dead-lettered again
        assert await topic_is_quiet(kafka_bootstrap, topics.raw, 0, wait=0.5) == 0
    finally:
        await conn.close()


async def test_an_identity_change_that_cannot_be_decoded_is_dead_lettered_too(
    client: TestClient, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    await produce(kafka_bootstrap, topics.identity_changes, [(b"p", b'{"kind": "merge"}')])
    [(key, value, headers)] = await read_topic(kafka_bootstrap, topics.dlq, 1)
    assert (key, value) == (b"p", b'{"kind": "merge"}')
    assert (headers["service"], headers["stage"], headers["topic"]) == (
        b"crm-core",
        b"decode",
        b"identity.changes.v1",
    )


async def test_replay_sends_each_services_letters_back_to_the_topic_it_read_them_from(
    kafka_bootstrap: str, topics: kafka.Topics, monkeypatch: pytest.MonkeyPatch
) -> None:
    producer = kafka.producer(kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            topics.dlq, b"raw-1", key=b"v1", headers=[("service", b"enricher"), ("stage", b"decode")]
        )
        await producer.send_and_wait(
            topics.dlq, b"enriched-1", key=b"p1", headers=[("service", b"crm-core"), ("stage", b"store")]
        )
        await producer.send_and_wait(topics.dlq, b"raw-2", key=b"v2")  # a letter from before the headers
    finally:
        await producer.stop()
    monkeypatch.setenv("LEADLINE_KAFKA_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv("LEADLINE_TOPIC_PREFIX", topics.raw.removesuffix("capture.raw.v1"))
    assert await asyncio.to_thread(cli.main, ["dlq", "replay", "--service", "enricher"]) == 0
    raw = await read_topic(kafka_bootstrap, topics.raw, 2)
    assert sorted((k, v) for k, v, _ in raw) == [(b"v1", b"raw-1"), (b"v2", b"raw-2")]
    assert await topic_is_quiet(kafka_bootstrap, topics.enriched, 0, wait=0.5) == 0
    assert await asyncio.to_thread(cli.main, ["dlq", "replay", "--from-offset", "1", "--limit", "1"]) == 0
    [(k, v, _)] = await read_topic(kafka_bootstrap, topics.enriched, 1)
    assert (k, v) == (b"p1", b"enriched-1")
    assert await topic_is_quiet(kafka_bootstrap, topics.raw, 2, wait=0.5) == 2
