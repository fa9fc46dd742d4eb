"""``leadline migrate`` applies crm-core's and the enricher's migrations before any pod starts (the Helm hook Job).

The chart starts the services with LEADLINE_MIGRATE_ON_START=false, so this command is then the only thing that
creates their tables: it must find both services, apply everything once, and say so plainly in the Job's log.
"""

from __future__ import annotations

import re

import asyncpg
import pytest

from leadline_shared import cli, migrate


def test_both_services_register_their_migrations() -> None:
    """The command finds crm-core's and the enricher's schemas through entry points (shared imports neither)."""
    assert set(migrate.targets()) == {"crm-core", "enricher"}


def test_an_unknown_service_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """A misspelled --service fails at once and lists the known ones, instead of migrating nothing."""
    assert cli.main(["migrate", "--service", "crm"]) == 2
    assert "known: crm-core, enricher" in capsys.readouterr().err


@pytest.mark.integration
async def test_migrate_applies_each_schema_once(
    pg_dsn: str, run_id: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A first run creates both schemas' tables; a second applies nothing (an upgrade with no new migration)."""
    crm, identity = f"t_{run_id}_crm", f"t_{run_id}_identity"
    monkeypatch.setenv("LEADLINE_PG_DSN", pg_dsn)
    monkeypatch.setenv("LEADLINE_CRM_SCHEMA", crm)
    monkeypatch.setenv("LEADLINE_IDENTITY_SCHEMA", identity)
    conn = await asyncpg.connect(pg_dsn)
    try:
        assert cli.main(["migrate"]) == 0
        first = capsys.readouterr().out
        assert f"crm-core: schema {crm}," in first
        assert f"enricher: schema {identity}," in first
        assert not re.search(r"\b0 migration\(s\)", first)  # "50 migration(s)" is not "0 migration(s)"
        tables = {
            (r["table_schema"], r["table_name"])
            for r in await conn.fetch(
                "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema = ANY($1)",
                [crm, identity],
            )
        }
        assert (crm, "persons") in tables
        assert (identity, "identifiers") in tables
        assert cli.main(["migrate", "--service", "crm-core", "--service", "enricher"]) == 0
        second = capsys.readouterr().out
        assert f"crm-core: schema {crm}, 0 migration(s) applied" in second
        assert f"enricher: schema {identity}, 0 migration(s) applied" in second
    finally:
        for schema in (crm, identity):
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()


@pytest.mark.integration
def test_an_unreachable_database_fails_the_job(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hook Job fails (non-zero) with one readable line, so helm stops the upgrade before anything rolls."""
    monkeypatch.setenv("LEADLINE_PG_DSN", "postgresql://nobody@127.0.0.1:1/leadline?connect_timeout=2")
    assert cli.main(["migrate", "--service", "enricher"]) == 1
    assert "leadline migrate: enricher (schema identity) failed:" in capsys.readouterr().err
