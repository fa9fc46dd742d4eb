"""``leadline token``: tokens with a role, optionally tied to a rep so their actions name them; ``leadline
first-admin``: the web app's first login."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import asyncpg
import pytest

from leadline_crm import main
from leadline_crm.http import auth, passwords
from leadline_crm.settings import CrmSettings

pytestmark = pytest.mark.integration


async def test_a_token_can_belong_to_a_rep(crm_settings: CrmSettings, pg_dsn: str) -> None:
    plain = await main._create_token(crm_settings, "ops", "read_only")
    conn = await asyncpg.connect(pg_dsn, server_settings={"search_path": crm_settings.crm_schema})
    try:
        rep = await conn.fetchval(
            "INSERT INTO users (email, name, role) VALUES ('Sam@Example.com', 'Sam', 'sales') RETURNING id"
        )
        tied = await main._create_token(crm_settings, "sam", "sales", "sam@example.com")
        rows = {
            r["name"]: r
            for r in await conn.fetch(
                "SELECT name, role, user_id FROM api_tokens WHERE token_hash = ANY($1)",
                [auth.token_hash(plain), auth.token_hash(tied)],
            )
        }
    finally:
        await conn.close()
    assert (rows["ops"]["role"], rows["ops"]["user_id"]) == ("read_only", None)
    assert (rows["sam"]["role"], rows["sam"]["user_id"]) == ("sales", rep)
    with pytest.raises(SystemExit, match="no user"):
        await main._create_token(crm_settings, "x", "sales", "nobody@example.com")


def test_first_admin_prints_a_login_once_and_the_same_one_again(
    pg_dsn: str,
    run_id: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``make up`` prints the first admin's login; a second ``make up`` prints it again and changes nothing."""
    schema = f"t_{run_id}"
    monkeypatch.setenv("LEADLINE_PG_DSN", pg_dsn)
    monkeypatch.setenv("LEADLINE_CRM_SCHEMA", schema)
    out = tmp_path / "admin.login"
    args = argparse.Namespace(email="admin@example.com", out=str(out))
    try:
        assert main.first_admin(args) == 0
        first = capsys.readouterr().out
        saved = out.read_text()
        assert out.stat().st_mode & 0o777 == 0o600
        password = saved.split("password: ")[1].strip()
        assert f"admin login: admin@example.com  password: {password}" in first
        assert len(password) >= 20

        assert main.first_admin(args) == 0
        again = capsys.readouterr().out
        assert password in again
        assert out.read_text() == saved

        async def check() -> tuple[str, int]:
            conn = await asyncpg.connect(pg_dsn, server_settings={"search_path": schema})
            try:
                row = await conn.fetchrow(
                    "SELECT password_hash, role FROM users WHERE email = 'admin@example.com'"
                )
                users = await conn.fetchval("SELECT count(*) FROM users")
            finally:
                await conn.close()
            assert row["role"] == "admin"
            return row["password_hash"], users

        stored, users = asyncio.run(check())
        assert users == 1
        assert passwords.HASHER.verify(stored, password)
    finally:

        async def drop() -> None:
            conn = await asyncpg.connect(pg_dsn)
            try:
                await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            finally:
                await conn.close()

        asyncio.run(drop())
