"""crm-core's outbox on the real broker and database: what crm-core owes Kafka is never lost.

Messages are written in the same transaction as the change; the relay sends them in order and deletes them only
once Kafka acknowledged them, keeps them while Kafka cannot be reached, and a later relay (another replica, or
crm-core after a restart) sends them then.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from prometheus_client import CollectorRegistry

from leadline_crm import outbox
from leadline_crm.app import MIGRATIONS, create_app
from leadline_crm.http import auth
from leadline_crm.settings import CrmSettings
from leadline_shared import config, kafka, pg, siteconfig
from support import read_topic, topic_is_quiet

pytestmark = pytest.mark.integration

H = dict[str, dict[str, str]]


@pytest.fixture
async def pool(pg_dsn: str, schema: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a freshly migrated CRM schema (the relay takes connections from it as the service's does)."""
    await pg.migrate(pg_dsn, schema, MIGRATIONS)
    p = await pg.create_pool(pg_dsn, schema, max_size=4)
    yield p
    await p.close()


def form(key: str) -> siteconfig.FormConfig:
    return siteconfig.FormConfig(key=key, fields=("email",), thank_you_url="/thanks")


def closed_port() -> int:
    """A local port nobody listens on: a Kafka that is down."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def relay_for(pool: asyncpg.Pool, bootstrap: str, topics: kafka.Topics, **kw: Any) -> outbox.Relay:
    return outbox.Relay(pool, bootstrap, topics, CollectorRegistry(), poll_seconds=0.5, **kw)


@contextlib.asynccontextmanager
async def running(relay: outbox.Relay) -> AsyncIterator[outbox.Relay]:
    """The relay as the service runs it: a task, cancelled and awaited at the end."""
    task = asyncio.ensure_future(relay.run())
    try:
        yield relay
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def owe(pool: asyncpg.Pool, *messages: outbox.Message) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await outbox.write(conn, messages)


async def pending(pool: asyncpg.Pool) -> int:
    count: int = await pool.fetchval("SELECT count(*) FROM outbox")
    return count


async def drained(pool: asyncpg.Pool) -> bool:
    return await pending(pool) == 0


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    """Poll ``predicate`` until it holds; fail the test after ``timeout``."""
    try:
        async with asyncio.timeout(timeout):
            while not await predicate():
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"still not true after {timeout}s")


async def config_records(bootstrap: str, topic: str, count: int) -> list[tuple[str, Any]]:
    return [siteconfig.decode(k or b"", v) for k, v, _ in await read_topic(bootstrap, topic, count)]


async def test_the_relay_sends_rows_in_the_order_written_and_deletes_them_once_acknowledged(
    pool: asyncpg.Pool, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    """A put, a tombstone and a put again of one key arrive in the order written; a change that rolled back owes
    nothing."""
    await owe(pool, outbox.config_entry(form("a")), outbox.config_entry(form("b")))
    await owe(pool, outbox.config_tombstone("form:a"))
    with contextlib.suppress(ZeroDivisionError):
        async with pool.acquire() as conn, conn.transaction():
            await outbox.write(conn, [outbox.config_tombstone("form:b")])
            raise ZeroDivisionError  # the change failed after writing its message
    await owe(pool, outbox.config_entry(form("a")))
    assert await pending(pool) == 4

    async with running(relay_for(pool, kafka_bootstrap, topics)) as relay:
        records = await config_records(kafka_bootstrap, topics.config, 4)
        await wait_until(lambda: drained(pool))
        assert relay.state == "leading"
        assert await relay.healthy()
    assert records == [("form:a", form("a")), ("form:b", form("b")), ("form:a", None), ("form:a", form("a"))]
    assert await topic_is_quiet(kafka_bootstrap, topics.config, 4, wait=1.0) == 4


async def test_rows_wait_while_kafka_is_unreachable_and_a_later_relay_delivers_them(
    pool: asyncpg.Pool, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    """Kafka down: nothing is deleted, readiness turns only once a row waited past the threshold, and the next
    relay (another replica, or the service restarted) sends everything in order."""
    await owe(pool, outbox.config_entry(form("x")), outbox.config_tombstone("form:x"))
    down = f"127.0.0.1:{closed_port()}"
    async with running(relay_for(pool, down, topics, stale_seconds=0.5, retry_seconds=0.1)) as stuck:
        await wait_until(lambda: _failed(stuck))
        assert stuck.state == "failing"
        assert await stuck.healthy()  # a blip: the rows have not waited 0.5 s yet
        await asyncio.sleep(0.6)
        assert not await stuck.healthy()
        assert await pending(pool) == 2
    assert await pending(pool) == 2

    await owe(pool, outbox.config_entry(form("y")))
    async with running(relay_for(pool, kafka_bootstrap, topics)):
        records = await config_records(kafka_bootstrap, topics.config, 3)
        await wait_until(lambda: drained(pool))
    assert records == [("form:x", form("x")), ("form:x", None), ("form:y", form("y"))]


async def test_a_row_kafka_refuses_is_set_aside_and_the_rows_behind_it_still_go_out(
    pool: asyncpg.Pool, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    """One message too large for the topic used to be retried forever, holding up every config change behind it.
    Now it moves to outbox_dead (counted, its content never logged) and the rest go out in order per key."""
    await _limit_message_size(kafka_bootstrap, topics.config, 4096)
    too_big_for_topic: outbox.Message = ("config", b"form:big", b"x" * 8000)  # the broker refuses it
    too_big_to_send: outbox.Message = ("config", b"form:huge", b"y" * 1_100_000)  # the producer refuses it
    await owe(
        pool,
        outbox.config_entry(form("a")),
        too_big_for_topic,
        outbox.config_entry(form("b")),
        too_big_to_send,
        outbox.config_tombstone("form:a"),
    )
    async with running(relay_for(pool, kafka_bootstrap, topics)) as relay:
        await wait_until(lambda: drained(pool))
        assert relay.registry.get_sample_value("leadline_crm_outbox_dead_total") == 2
        await owe(pool, outbox.config_entry(form("c")))  # the relay carries on
        await wait_until(lambda: drained(pool))
        assert relay.state == "leading"
        assert await relay.healthy()
    total = await topic_is_quiet(kafka_bootstrap, topics.config, 4, wait=0.5)
    records = await config_records(kafka_bootstrap, topics.config, total)
    keys = [k for k, _ in records]
    assert "form:big" not in keys
    assert "form:huge" not in keys
    latest = dict(records)  # at least once: a row may arrive twice, but each key's last word is its newest
    assert latest == {"form:a": None, "form:b": form("b"), "form:c": form("c")}
    assert keys.index("form:a") < len(keys) - 1 - keys[::-1].index("form:a")  # the put before the tombstone
    dead = await pool.fetch("SELECT key, error FROM outbox_dead ORDER BY id")
    assert [(r["key"], r["error"]) for r in dead] == [
        (b"form:big", "MessageSizeTooLargeError"),
        (b"form:huge", "MessageSizeTooLargeError"),
    ]


async def _limit_message_size(bootstrap: str, topic: str, limit: int) -> None:
    """Lower the topic's largest accepted record batch, as an operator's topic config might."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        resource = ConfigResource(ConfigResourceType.TOPIC, topic, configs={"max.message.bytes": str(limit)})
        await admin.alter_configs([resource])
    finally:
        await admin.close()


async def _failed(relay: outbox.Relay) -> bool:
    return (relay.registry.get_sample_value("leadline_crm_outbox_failures_total") or 0) > 0


async def test_two_replicas_send_through_one_leader_and_the_standby_takes_over(
    pool: asyncpg.Pool, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    """Every replica runs a relay; only the lock holder sends (so one key's messages never interleave), and when
    it stops the other takes over."""
    first = relay_for(pool, kafka_bootstrap, topics, standby_seconds=0.2)
    second = relay_for(pool, kafka_bootstrap, topics, standby_seconds=0.2)
    async with running(first):
        await wait_until(lambda: _state(first, "leading"))
        async with running(second):
            await wait_until(lambda: _state(second, "standby"))
            await owe(pool, *(outbox.config_entry(form(f"f{i}")) for i in range(5)))
            await config_records(kafka_bootstrap, topics.config, 5)
            await wait_until(lambda: drained(pool))
            assert second.state == "standby"
            assert await second.healthy()
    async with running(second):
        await wait_until(lambda: _state(second, "leading"))
        await owe(pool, outbox.config_tombstone("form:f0"))
        records = await config_records(kafka_bootstrap, topics.config, 6)
    assert [k for k, _ in records] == [f"form:f{i}" for i in range(5)] + ["form:f0"]
    assert records[-1][1] is None
    assert await topic_is_quiet(kafka_bootstrap, topics.config, 6, wait=1.0) == 6


async def _state(relay: outbox.Relay, state: str) -> bool:
    return relay.state == state


async def test_a_tombstone_written_while_publishing_fails_reaches_the_collector_after_a_restart(
    crm_settings: CrmSettings, kafka_bootstrap: str, run_id: str
) -> None:
    """Before the outbox a delete whose tombstone Kafka did not take in time lived only in memory: a restart lost
    it and the collector kept accepting a deleted form. Now the tombstone waits in PostgreSQL."""
    prefix = f"test-{run_id}.later."  # this deployment's config topic does not exist yet: every publish fails
    later = kafka.Topics.with_prefix(prefix)
    env = {
        "LEADLINE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "LEADLINE_TOPIC_PREFIX": prefix,
        "LEADLINE_PG_DSN": crm_settings.pg_dsn,
        "LEADLINE_CRM_SCHEMA": crm_settings.crm_schema,
        "LEADLINE_CRM_GROUP": f"crm-later-{run_id}",
        "LEADLINE_CRM_OUTBOX_STALE_SECONDS": "1",
    }
    await _create_all_but_config(kafka_bootstrap, later)
    broken = config.load(CrmSettings, env | {"LEADLINE_CREATE_TOPICS": "false"})
    async with TestClient(TestServer(create_app(broken))) as first:
        headers = {"Authorization": f"Bearer {await _admin_token(crm_settings)}"}
        body = {"key": "gone", "fields": ["email"], "thank_you_url": "/t"}
        assert (await first.post("/api/v1/forms", json=body, headers=headers)).status == 201
        assert (await first.delete("/api/v1/forms/gone", headers=headers)).status == 204
        await asyncio.sleep(1.2)
        ready = await first.get("/readyz")
        assert ready.status == 503
        assert (await ready.json())["checks"]["outbox"] is False
    rows = await _outbox_keys(crm_settings)
    assert rows[-2:] == [(b"form:gone", True), (b"form:gone", False)]

    async with TestClient(TestServer(create_app(config.load(CrmSettings, env)))) as second:
        records = await config_records(kafka_bootstrap, later.config, 2)
        assert records == [
            ("form:gone", siteconfig.FormConfig(key="gone", fields=("email",), thank_you_url="/t")),
            ("form:gone", None),
        ]
        await wait_until(lambda: _no_rows(crm_settings))
        assert (await second.get("/readyz")).status == 200


async def _create_all_but_config(bootstrap: str, topics: kafka.Topics) -> None:
    """The topics crm-core consumes exist; the config topic it publishes to does not."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([t for t in topics.specs(1) if t.name != topics.config])
    finally:
        await admin.close()


async def _admin_token(settings: CrmSettings) -> str:
    conn = await asyncpg.connect(settings.dsn, server_settings={"search_path": settings.crm_schema})
    try:
        return await auth.create_token(conn, "restart", "admin")
    finally:
        await conn.close()


async def _outbox_keys(settings: CrmSettings) -> list[tuple[bytes, bool]]:
    conn = await asyncpg.connect(settings.dsn, server_settings={"search_path": settings.crm_schema})
    try:
        rows = await conn.fetch("SELECT key, value IS NOT NULL FROM outbox ORDER BY id")
    finally:
        await conn.close()
    return [(bytes(r[0]), r[1]) for r in rows]


async def _no_rows(settings: CrmSettings) -> bool:
    return not await _outbox_keys(settings)


async def test_raw_events_go_to_the_partition_every_raw_producer_agrees_on(
    pool: asyncpg.Pool, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    """crm-core's raw events (rep leads, unlinks) used Kafka's default partitioner while the collector uses
    CRC-32: one key could land on two partitions and lose its order (issue 11, part 2)."""
    keys = [f"crm_contact_id:0190b3f0-7c1e-7cc2-9a57-00000000000{i}".encode() for i in range(8)]
    await owe(pool, *[("raw", k, b'{"n": %d}' % i) for i, k in enumerate(keys)])
    async with running(relay_for(pool, kafka_bootstrap, topics)):
        consumer = AIOKafkaConsumer(
            topics.raw, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest", group_id=None
        )
        await consumer.start()
        try:
            seen: dict[bytes, int] = {}
            async with asyncio.timeout(20):
                while len(seen) < len(keys):
                    for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                        seen.update({r.key: tp.partition for r in records if r.key is not None})
        finally:
            await consumer.stop()
    partitions = len(await kafka_partitions(kafka_bootstrap, topics.raw))
    assert seen == {k: kafka.partition_for(k, partitions) for k in keys}


async def kafka_partitions(bootstrap: str, topic: str) -> set[int]:
    producer = kafka.producer(bootstrap)
    await producer.start()
    try:
        return set(await producer.partitions_for(topic))
    finally:
        await producer.stop()
