"""Fixtures of crm-core's tests: a migrated schema of the test's own and a connection to it."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from leadline_crm.app import MIGRATIONS, create_app
from leadline_crm.http import auth
from leadline_crm.settings import CrmSettings
from leadline_shared import config, kafka, pg

REPO = Path(__file__).resolve().parents[2]
if (
    str(REPO) not in sys.path
):  # the repository's ``benchmarks`` package (run with ``python -m`` from the root)
    sys.path.insert(0, str(REPO))


@pytest.fixture
async def crm_conn(pg_dsn: str, schema: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to a freshly migrated CRM schema (jsonb as Python objects, as in the service's pool)."""
    await pg.migrate(pg_dsn, schema, MIGRATIONS)
    pool = await pg.create_pool(pg_dsn, schema, min_size=1, max_size=1)
    async with pool.acquire() as conn:
        yield conn
    await pool.close()


@pytest.fixture
def crm_settings(
    kafka_bootstrap: str, pg_dsn: str, schema: str, run_id: str, topics: kafka.Topics
) -> CrmSettings:
    """Settings pointing crm-core at this test's schema, topics and consumer group."""
    return config.load(
        CrmSettings,
        {
            "LEADLINE_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "LEADLINE_TOPIC_PREFIX": f"test-{run_id}.",
            "LEADLINE_PG_DSN": pg_dsn,
            "LEADLINE_CRM_SCHEMA": schema,
            "LEADLINE_CRM_GROUP": f"crm-{run_id}",
            "LEADLINE_LINK_KEYS": "k2:0123456789abcdef0123,k1:fedcba9876543210fedc",
        },
    )


@pytest.fixture
async def client(crm_settings: CrmSettings) -> AsyncIterator[TestClient]:
    """crm-core running (API, ingestion, config publishing) against the real broker and database."""
    async with TestClient(TestServer(create_app(crm_settings))) as c:
        yield c


@pytest.fixture
async def auth_headers(client: TestClient, pg_dsn: str, schema: str) -> dict[str, dict[str, str]]:
    """An Authorization header per role; the sales token belongs to a rep (a user)."""
    conn = await asyncpg.connect(pg_dsn, server_settings={"search_path": schema})
    try:
        rep = await conn.fetchval(
            "INSERT INTO users (email, name, role) VALUES ('rep@example.com', 'Rita Rep', 'sales') RETURNING id"
        )
        out = {}
        for role in auth.ROLES:
            token = await auth.create_token(conn, f"t-{role}", role, rep if role == "sales" else None)
            out[role] = {"Authorization": f"Bearer {token}"}
        return out
    finally:
        await conn.close()
