"""PostgreSQL away: crm-core's API answers 503 problem+json with Retry-After and its pages a readable 503, not a
500; once the database is back the same requests work again without a restart (http/unavailable.py), and
crm-core still shuts down promptly (its relays once swallowed the cancellation and never ended).

crm-core runs here against a PostgreSQL of this module's own, which the test stops and starts: the shared one
stays up for every other test.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from crm_core.web import sign_in
from leadline_crm.app import create_app
from leadline_crm.http import auth
from leadline_crm.settings import CrmSettings
from leadline_localstack import postgres as local_pg
from leadline_localstack import procs

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def private_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int, str]]:
    """A PostgreSQL of this module's own (run dir, port, DSN), for tests that stop and start it."""
    run_dir = tmp_path_factory.mktemp("outage-pg")
    port = procs.free_port()
    dsn = local_pg.start_postgres(run_dir, port=port, for_tests=True)
    yield run_dir, port, dsn
    local_pg.stop_postgres(run_dir)


async def _admin_token(dsn: str, schema: str) -> dict[str, str]:
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        token = await auth.create_token(conn, "t-admin", "admin", None)
    finally:
        await conn.close()
    return {"Authorization": f"Bearer {token}"}


async def _eventually_ok(client: TestClient, path: str, headers: dict[str, str], within: float = 15.0) -> int:
    """The status of ``path`` once it is 200, or the last one seen after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        status = (await client.get(path, headers=headers)).status
        if status == 200 or time.monotonic() > deadline:
            return status
        await asyncio.sleep(0.5)


async def test_database_away_is_503_with_retry_after_then_heals(
    crm_settings: CrmSettings, private_pg: tuple[Path, int, str]
) -> None:
    run_dir, port, dsn = private_pg
    settings = dataclasses.replace(crm_settings, crm_dsn=dsn)
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    try:
        headers = await _admin_token(dsn, settings.crm_schema)
        assert (await client.get("/api/v1/persons", headers=headers)).status == 200
        await sign_in(client, "admin")
        assert (await client.get("/app")).status == 200

        local_pg.stop_postgres(run_dir)
        try:
            resp = await client.get("/api/v1/persons", headers=headers)
            assert resp.status == 503
            assert resp.content_type == "application/problem+json"
            assert resp.headers["Retry-After"].isdigit()
            doc = await resp.json(content_type=None)
            assert doc["status"] == 503
            assert "nothing was changed" in doc["detail"]

            page = await client.get("/app", allow_redirects=False)
            assert page.status == 503, "a page that reads the session must say the database is away"
            assert page.content_type == "text/html"
            assert "Try again in a few seconds" in await page.text()
            assert page.headers["Retry-After"].isdigit()
            assert "Content-Security-Policy" in page.headers, "the error page keeps the workspace's headers"
        finally:
            local_pg.start_postgres(run_dir, port=port, for_tests=True)

        assert await _eventually_ok(client, "/api/v1/persons", headers) == 200, (
            "the pool reconnects by itself"
        )
        assert await _eventually_ok(client, "/app", {}) == 200, "and the session is still there"
    finally:
        started = time.monotonic()
        async with asyncio.timeout(60):
            await client.close()
        assert time.monotonic() - started < 30, "crm-core must stop promptly after a PostgreSQL restart"
