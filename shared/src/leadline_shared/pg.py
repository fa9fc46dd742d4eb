"""PostgreSQL helpers: the asyncpg pool bound to a service's schema, and migrations applied with yoyo.

Each service owns one schema (``identity`` for the enricher, ``crm`` for crm-core). Migrations are plain SQL
files beside the code that uses them and name no schema: they run with ``search_path`` set to the service's
schema, so a test can apply them to a schema of its own and never meet another test's rows.
"""

from __future__ import annotations

import asyncio
import functools
import re
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

import asyncpg
import orjson
from yoyo import get_backend, read_migrations
from yoyo.migrations import MigrationList

UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.exceptions.OperatorInterventionError,
)
"""PostgreSQL unreachable, restarting, shutting down or failing over (a closed connection, a refused one, a
cancelled statement): worth waiting for and retrying, unlike a bug or a constraint error. asyncpg 0.32 raises
InternalClientError ("cannot switch to state …; another operation is in progress") on a pooled connection the
server closed while it sat idle, the first thing a request meets after a PostgreSQL restart. One definition, so the
enricher and crm-core's consumer retry the same failures and crm-core's API answers them with 503."""

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def check_schema_name(schema: str) -> str:
    """Schema names are interpolated into SQL, so only plain lower-case identifiers are accepted."""
    if not _IDENT.match(schema):
        raise ValueError(f"invalid schema name {schema!r}: use lower-case letters, digits and _")
    return schema


def _yoyo_uri(dsn: str, schema: str) -> str:
    parts = urlsplit(dsn)
    query = urlencode({"schema": schema})
    return urlunsplit(("postgresql+psycopg", parts.netloc, parts.path, query, ""))


def _stamp(migrations: Path) -> tuple[tuple[str, int, int], ...]:
    """What identifies a migrations folder's content: each file's name, size and modification time."""
    return tuple(
        (f.name, (st := f.stat()).st_size, st.st_mtime_ns)
        for f in sorted(migrations.iterdir())
        if f.is_file()
    )


@functools.lru_cache(maxsize=8)
def _parsed(migrations: str, stamp: tuple[tuple[str, int, int], ...]) -> MigrationList:
    """The folder's migrations, read and split into statements once per process and content.

    Why: yoyo splits every SQL file with sqlparse each time it is asked, which was 0.7 s of the 1.8 s that
    migrating an empty schema took (57 files); the tests migrate a fresh schema for nearly every test, and a
    service migrates on each start. yoyo's Migration objects take the backend per call, so one parsed list serves
    every schema. ``stamp`` keys the cache on the files' content, so an edited folder is read again."""
    parsed = read_migrations(migrations)
    for migration in parsed:
        migration.load()
    return parsed


def migrate_sync(dsn: str, schema: str, migrations: Path) -> list[str]:
    """Create ``schema`` if needed and apply the pending migrations; returns the ids applied."""
    import psycopg

    check_schema_name(schema)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    parsed = _parsed(str(migrations), _stamp(migrations))
    backend = get_backend(_yoyo_uri(dsn, schema))
    try:
        with (
            backend.lock()
        ):  # pending is read under the lock: another replica may have applied some meanwhile
            pending = backend.to_apply(parsed)
            backend.apply_migrations(pending)
    finally:
        backend.connection.close()
    return [m.id for m in pending]


async def migrate(dsn: str, schema: str, migrations: Path) -> list[str]:
    """:func:`migrate_sync` off the event loop (yoyo is synchronous)."""
    return await asyncio.to_thread(migrate_sync, dsn, schema, migrations)


async def _init_connection(conn: asyncpg.Connection) -> None:
    """jsonb in and out as Python objects, encoded with orjson."""
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=lambda v: orjson.dumps(v).decode(),
        decoder=orjson.loads,
        format="text",
    )


async def create_pool(dsn: str, schema: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections see ``schema`` first on their search path."""
    check_schema_name(schema)
    pool: asyncpg.Pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        server_settings={"search_path": f"{schema},public", "application_name": "leadline"},
        init=_init_connection,
        command_timeout=30,
    )
    return pool


async def pool_reachable(pool: asyncpg.Pool, timeout: float = 2.0) -> bool:
    """True when a pooled connection answers ``SELECT 1`` in time (for /readyz)."""
    try:
        async with asyncio.timeout(timeout):
            await pool.fetchval("SELECT 1")
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False
    return True
