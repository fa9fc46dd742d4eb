"""Fixtures of crm-core's tests: a migrated schema of the test's own and a connection to it.

Every test gets its own schema, migrated to the newest version. Running the 40-odd migrations for each test cost
about a second (yoyo's files, a connection and a transaction per migration, and the DDL itself), over a suite of
hundreds of crm-core tests the largest single part of its time. So the migrations run once per session into a
template schema, pg_dump writes that schema out as SQL, and each test's schema is made by running that SQL under
its own name, in one round trip. The app's own migration at start-up then finds every migration recorded and does
nothing. ``test_schema_clone.py`` checks that a clone and a migrated schema are the same to the catalog.
"""

from __future__ import annotations

import asyncio
import queue
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import psycopg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from leadline_crm.app import MIGRATIONS, create_app
from leadline_crm.http import auth
from leadline_crm.settings import CrmSettings
from leadline_localstack import postgres as local_pg
from leadline_shared import config, kafka, pg

REPO = Path(__file__).resolve().parents[2]
if (
    str(REPO) not in sys.path
):  # the repository's ``benchmarks`` package (run with ``python -m`` from the root)
    sys.path.insert(0, str(REPO))


PLACEHOLDER = "leadline_schema_placeholder"


def dump_schema(pg_dsn: str, name: str) -> str:
    """``name`` written out by pg_dump as SQL (structure and rows, rows as INSERTs, no owners or grants), with
    psql's meta-commands (``\\restrict``) left out so that the server can run it as one query string."""
    pg_dump = local_pg.bin_dir() / "pg_dump"
    done = subprocess.run(
        [str(pg_dump), "--dbname", pg_dsn, "--schema", name, "--inserts", "--no-owner", "--no-privileges"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return "\n".join(line for line in done.stdout.splitlines() if not line.startswith("\\"))


@pytest.fixture(scope="session")
def migrated_sql(pg_dsn: str) -> str:
    """The SQL that makes a schema as the migrations leave it, its name replaced by :data:`PLACEHOLDER`."""
    template = f"tmpl_{uuid.uuid4().hex[:12]}"
    pg.migrate_sync(pg_dsn, template, MIGRATIONS)
    try:
        sql = dump_schema(pg_dsn, template)
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {template} CASCADE")
    return re.sub(rf"\b{template}\b", PLACEHOLDER, sql)


async def clone_migrated(pg_dsn: str, schema: str, sql: str) -> None:
    """Make ``schema`` from :func:`migrated_sql`'s SQL, on a connection of its own (the dump empties the
    search path for its session)."""
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute(sql.replace(PLACEHOLDER, pg.check_schema_name(schema)))
    finally:
        await conn.close()


class SchemaStock:
    """Migrated schemas made ahead, one at a time, by a thread of its own while tests run; a test takes one and
    renames it to its own name (a catalog update: triggers, defaults and views point at objects, not names, and
    the migrations name no schema). Making a schema is mostly PostgreSQL's work and a test mostly waits, so the
    two overlap instead of adding up."""

    def __init__(self, pg_dsn: str, sql: str, depth: int = 2) -> None:
        self._dsn, self._sql = pg_dsn, sql
        self._ready: queue.Queue[str] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._fill, name="schema-stock", daemon=True)
        self._thread.start()

    def _fill(self) -> None:
        try:
            with psycopg.connect(self._dsn, autocommit=True) as conn:
                while not self._stop.is_set():
                    name = f"stock_{uuid.uuid4().hex[:12]}"
                    conn.execute(self._sql.replace(PLACEHOLDER, name).encode())
                    while True:
                        try:
                            self._ready.put(name, timeout=0.2)
                            break
                        except queue.Full:
                            if self._stop.is_set():
                                conn.execute(f"DROP SCHEMA {name} CASCADE".encode())
                                return
        except BaseException as exc:  # surfaced to the next test that asks (see take)
            self._error = exc

    def take(self, timeout: float = 120.0) -> str:
        """A ready schema's name (made now by the caller's thread's wait on the stock)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self._ready.get(timeout=0.2)
            except queue.Empty:
                if self._error is not None:
                    raise RuntimeError("the schema stock failed") from self._error
                if time.monotonic() > deadline:
                    raise TimeoutError("no migrated schema became ready in time") from None

    def close(self) -> None:
        """Stop making schemas and drop the ones no test took."""
        self._stop.set()
        self._thread.join(timeout=60)
        left = []
        while not self._ready.empty():
            left.append(self._ready.get_nowait())
        if left:
            with psycopg.connect(self._dsn, autocommit=True) as conn:
                for name in left:
                    conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE".encode())


@pytest.fixture(scope="session")
def schema_stock(pg_dsn: str, migrated_sql: str) -> Iterator[SchemaStock]:
    """The session's :class:`SchemaStock`."""
    stock = SchemaStock(pg_dsn, migrated_sql)
    yield stock
    stock.close()


async def take_migrated(pg_dsn: str, schema: str, stock: SchemaStock) -> None:
    """Make ``schema`` a migrated schema: a ready one from the stock, renamed."""
    ready = await asyncio.to_thread(stock.take)
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute(f"ALTER SCHEMA {ready} RENAME TO {pg.check_schema_name(schema)}")
    finally:
        await conn.close()


@pytest.fixture
async def crm_schema(pg_dsn: str, schema: str, schema_stock: SchemaStock) -> str:
    """This test's schema, migrated to the newest version (from the session's stock)."""
    await take_migrated(pg_dsn, schema, schema_stock)
    return schema


@pytest.fixture
async def crm_conn(pg_dsn: str, crm_schema: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to a freshly migrated CRM schema (jsonb as Python objects, as in the service's pool)."""
    pool = await pg.create_pool(pg_dsn, crm_schema, min_size=1, max_size=1)
    async with pool.acquire() as conn:
        yield conn
    await pool.close()


@pytest.fixture
def crm_settings(
    kafka_bootstrap: str, pg_dsn: str, crm_schema: str, run_id: str, topics: kafka.Topics
) -> CrmSettings:
    """Settings pointing crm-core at this test's schema (migrated already), topics and consumer group."""
    schema = crm_schema
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
