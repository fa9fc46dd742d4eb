"""``leadline token``: tokens with a role, optionally tied to a rep so their actions name them."""

from __future__ import annotations

import asyncpg
import pytest

from leadline_crm import main
from leadline_crm.http import auth
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
