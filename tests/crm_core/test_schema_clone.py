"""The per-test schema clone (conftest.py) gives what the migrations give, so tests still test the real schema."""

from __future__ import annotations

import re

import psycopg
from tests.crm_core.conftest import SchemaStock, clone_migrated, dump_schema, take_migrated

from leadline_crm.app import MIGRATIONS
from leadline_shared import pg

YOYO_ROWS = re.compile(r"^INSERT INTO S\._yoyo_(log|migration|version) VALUES .*$", re.MULTILINE)
UUID = re.compile(r"'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'")
TIME = re.compile(r"'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?(\+00)?'")


def _normal(sql: str, name: str) -> str:
    """A dump with the schema's name replaced, yoyo's bookkeeping rows left out, and the random ids and the
    times of the rows that migrations seed (the default pipeline, scoring rules) masked: they differ between
    any two migrated schemas too."""
    sql = YOYO_ROWS.sub("", re.sub(rf"\b{name}\b", "S", sql))
    return TIME.sub("'T'", UUID.sub("'U'", sql))


async def test_a_cloned_schema_matches_a_migrated_one_and_has_nothing_to_migrate(
    pg_dsn: str, run_id: str, migrated_sql: str
) -> None:
    migrated, cloned, renamed = f"t_{run_id}_m", f"t_{run_id}_c", f"t_{run_id}_r"
    stock = SchemaStock(pg_dsn, migrated_sql, depth=1)
    try:
        await pg.migrate(pg_dsn, migrated, MIGRATIONS)
        await clone_migrated(pg_dsn, cloned, migrated_sql)
        await take_migrated(pg_dsn, renamed, stock)  # what the tests' crm_schema fixture does
        want = _normal(dump_schema(pg_dsn, migrated), migrated)
        for name in (cloned, renamed):
            got = _normal(dump_schema(pg_dsn, name), name)
            assert "CREATE TABLE S.persons" in got
            assert "CREATE TRIGGER" in got
            assert got == want
            assert await pg.migrate(pg_dsn, name, MIGRATIONS) == []  # the app's start-up finds nothing to do
    finally:
        stock.close()
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            for name in (migrated, cloned, renamed):
                conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
