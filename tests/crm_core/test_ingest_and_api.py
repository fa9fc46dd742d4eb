"""crm-core: enriched events land once in PostgreSQL and come back through the authenticated events API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from leadline_crm.app import MIGRATIONS, create_app
from leadline_crm.http import auth
from leadline_crm.ingest.touches import write_batch
from leadline_crm.settings import CrmSettings
from leadline_shared import config, kafka, pg
from leadline_shared.events import EnrichedEvent, RawEvent, utc_now_iso
from leadline_shared.ids import new_id

pytestmark = pytest.mark.integration


NOW = datetime.now(UTC)


def enriched(anon_id: str, person_id: str, minutes_ago: int = 0) -> EnrichedEvent:
    at = (NOW - timedelta(minutes=minutes_ago)).isoformat(timespec="milliseconds")
    raw = RawEvent(
        event_id=new_id(),
        type="page_view",
        source="pixel",
        received_at=utc_now_iso(),
        occurred_at=at,
        anon_id=anon_id,
        context={"url": f"https://shop.example/{minutes_ago}"},
    )
    return EnrichedEvent.from_raw(raw, person_id)


@pytest.fixture
async def conn(pg_dsn: str, schema: str) -> AsyncIterator[asyncpg.Connection]:
    await pg.migrate(pg_dsn, schema, MIGRATIONS)
    c = await asyncpg.connect(pg_dsn, server_settings={"search_path": schema})
    yield c
    await c.close()


async def test_the_same_batch_delivered_twice_gives_the_same_rows(conn: asyncpg.Connection) -> None:
    person = new_id()
    batch = [enriched("v1", person, m) for m in range(5)]
    assert await write_batch(conn, batch) == 5
    assert await write_batch(conn, batch) == 0
    assert await write_batch(conn, [*batch[:2], enriched("v1", person, 9)]) == 1
    assert await conn.fetchval("SELECT count(*) FROM touchpoints") == 6
    first, last = await conn.fetchrow(
        "SELECT first_seen, last_seen FROM persons WHERE person_id = $1", person
    )
    assert last - first == timedelta(minutes=9)


@pytest.fixture
async def api(kafka_bootstrap: str, pg_dsn: str, schema: str, run_id: str) -> AsyncIterator[TestClient]:
    settings = config.load(
        CrmSettings,
        {
            "LEADLINE_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "LEADLINE_TOPIC_PREFIX": f"test-{run_id}.",
            "LEADLINE_PG_DSN": pg_dsn,
            "LEADLINE_CRM_SCHEMA": schema,
            "LEADLINE_CRM_GROUP": f"crm-{run_id}",
        },
    )
    async with TestClient(TestServer(create_app(settings))) as c:
        yield c


async def tokens(pg_dsn: str, schema: str) -> dict[str, str]:
    c = await asyncpg.connect(pg_dsn, server_settings={"search_path": schema})
    try:
        return {role: await auth.create_token(c, f"t-{role}", role) for role in ("admin", "read_only")}
    finally:
        await c.close()


async def test_events_api_pages_through_a_visitors_touchpoints_newest_first(
    api: TestClient, pg_dsn: str, schema: str, kafka_bootstrap: str, topics: kafka.Topics
) -> None:
    person = new_id()
    events = [enriched("v42", person, m) for m in range(7)] + [enriched("other", new_id())]
    producer = kafka.producer(kafka_bootstrap)
    await producer.start()
    for e in events:
        await producer.send(topics.enriched, e.to_json(), key=e.person_id.encode())
    await producer.stop()
    headers = {"Authorization": f"Bearer {(await tokens(pg_dsn, schema))['read_only']}"}

    seen: list[str] = []
    for _ in range(100):  # ingestion is asynchronous: poll until all seven are there
        resp = await api.get("/api/v1/events", params={"anon_id": "v42", "limit": "100"}, headers=headers)
        assert resp.status == 200
        seen = [item["event_id"] for item in (await resp.json())["items"]]
        if len(seen) == 7:
            break
        await asyncio.sleep(0.1)
    assert seen == [e.event_id for e in events[:7]]

    pages, cursor = [], None
    while True:
        params = {"anon_id": "v42", "limit": "3"} | ({"cursor": cursor} if cursor else {})
        body = await (await api.get("/api/v1/events", params=params, headers=headers)).json()
        pages.append([item["event_id"] for item in body["items"]])
        cursor = body["next"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [e for page in pages for e in page] == seen

    by_person = await (await api.get("/api/v1/events", params={"person_id": person}, headers=headers)).json()
    assert len(by_person["items"]) == 7


@pytest.mark.parametrize(
    ("headers", "params", "status", "detail"),
    [
        ({}, {"anon_id": "v1"}, 401, "Bearer"),
        ({"Authorization": "Bearer llt_wrong"}, {"anon_id": "v1"}, 401, "unknown"),
        ("admin", {}, 422, "exactly one"),
        ("admin", {"person_id": "not-a-uuid"}, 422, "UUID"),
        ("admin", {"anon_id": "v1", "limit": "0"}, 422, "limit"),
        ("admin", {"anon_id": "v1", "cursor": "%%%"}, 422, "cursor"),
    ],
)
async def test_events_api_rejects_bad_calls_with_problem_json(
    api: TestClient,
    pg_dsn: str,
    schema: str,
    headers: dict[str, str] | str,
    params: dict[str, str],
    status: int,
    detail: str,
) -> None:
    if isinstance(headers, str):
        headers = {"Authorization": f"Bearer {(await tokens(pg_dsn, schema))[headers]}"}
    resp = await api.get("/api/v1/events", params=params, headers=headers)
    assert resp.status == status
    assert resp.headers["Content-Type"] == "application/problem+json"
    body = await resp.json()
    assert body["status"] == status
    assert detail in body["detail"]


async def test_tokens_are_stored_hashed(pg_dsn: str, schema: str, api: TestClient) -> None:
    issued = await tokens(pg_dsn, schema)
    c = await asyncpg.connect(pg_dsn, server_settings={"search_path": schema})
    try:
        stored = [bytes(r[0]) for r in await c.fetch("SELECT token_hash FROM api_tokens")]
    finally:
        await c.close()
    assert all(t.encode() not in stored for t in issued.values())
    assert auth.token_hash(issued["admin"]) in stored
