"""Identity resolution in the real identity schema: one person behind a visitor's cookie and identifiers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from leadline_enricher.app import MIGRATIONS
from leadline_enricher.identity import identifiers_of, resolve
from leadline_shared import pg
from leadline_shared.events import RawEvent, utc_now_iso
from leadline_shared.ids import new_id

pytestmark = pytest.mark.integration


def ev(anon_id: str | None = None, **ids: str) -> RawEvent:
    return RawEvent(
        event_id=new_id(),
        type="page_view",
        source="pixel",
        received_at=utc_now_iso(),
        anon_id=anon_id,
        ids=ids,
    )


@pytest.fixture
async def pool(pg_dsn: str, schema: str) -> AsyncIterator[asyncpg.Pool]:
    await pg.migrate(pg_dsn, schema, MIGRATIONS)
    p = await pg.create_pool(pg_dsn, schema, max_size=4)
    yield p
    await p.close()


async def resolve_one(pool: asyncpg.Pool, event: RawEvent) -> str:
    async with pool.acquire() as conn, conn.transaction():
        return await resolve(conn, event)


async def test_same_cookie_is_the_same_person(pool: asyncpg.Pool) -> None:
    assert await resolve_one(pool, ev("v1")) == await resolve_one(pool, ev("v1"))
    assert await resolve_one(pool, ev("v1")) != await resolve_one(pool, ev("v2"))


async def test_email_joins_the_cookies_person_and_a_second_device_follows(pool: asyncpg.Pool) -> None:
    first = await resolve_one(pool, ev("laptop"))
    assert await resolve_one(pool, ev("laptop", email=" Ann@Example.COM ")) == first
    assert await resolve_one(pool, ev("phone", email="ann@example.com")) == first
    assert await resolve_one(pool, ev("phone")) == first


def test_blocked_values_never_count_as_identifiers() -> None:
    found = identifiers_of(ev("undefined", email="null", user_id="[object Object]", phone="+15551234567"))
    assert found == [("phone", "+15551234567")]


async def test_migrations_are_idempotent(pg_dsn: str, schema: str, pool: asyncpg.Pool) -> None:
    assert await pg.migrate(pg_dsn, schema, MIGRATIONS) == []


async def test_two_replicas_racing_on_a_new_identifier_make_one_person(
    pg_dsn: str, schema: str, pool: asyncpg.Pool
) -> None:
    other = await pg.create_pool(pg_dsn, schema, max_size=4)
    try:
        results = await asyncio.gather(
            *(resolve_one(p, ev(email="race@example.com")) for p in (pool, other) * 5)
        )
    finally:
        await other.close()
    assert len(set(results)) == 1
    owners = await pool.fetchval("SELECT count(DISTINCT person_id) FROM identifiers WHERE type = 'email'")
    assert owners == 1
