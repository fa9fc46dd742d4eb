"""An import whose crm-core stopped mid-run (a restart, a crash) does not stay 'running' for ever (issue 15): once the
app is up again, the job is shown failed with the reason on its page, in the list and in the API, and it can be run
again; a job whose runner is alive (it holds the run's lock) is left running."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from crm_core.imports.test_imports import post, text
from crm_core.web import csrf_of, sign_in
from leadline_crm.imports import jobs

pytestmark = pytest.mark.integration

H = dict[str, dict[str, str]]
LOCK = "SELECT pg_advisory_lock(hashtext('leadline.import'), hashtext($1::uuid::text))"


async def _left_running(client: TestClient, admin: dict[str, str], conn: asyncpg.Connection) -> uuid.UUID:
    """A kept upload as a dead process leaves it: queued, taken (running, 2 rows read), never finished."""
    body = text([["email"], ["ann@corp.example"], ["bob@corp.example"], ["cid@corp.example"]])
    job = await post(client, admin, body)  # a dry run: the file is kept
    await conn.execute(
        "UPDATE import_jobs SET status = 'running', mode = 'commit', finished_at = NULL, processed = 2"
        " WHERE id = $1",
        uuid.UUID(job["id"]),
    )
    return uuid.UUID(job["id"])


async def test_a_job_left_running_by_a_dead_crm_core_is_shown_failed_and_runs_again(
    client: TestClient, auth_headers: H, crm_conn: asyncpg.Connection
) -> None:
    """An admin whose import was cut by a deploy sees why it stopped and starts it again."""
    admin = auth_headers["admin"]
    job = await _left_running(client, admin, crm_conn)
    resp = await client.get(f"/api/v1/imports/{job}", headers=admin)
    shown = await resp.json()
    assert shown["status"] == "failed"
    assert "crm-core stopped while this import was running" in shown["error"]
    assert "the first 2 rows were done (" in shown["error"]

    await sign_in(client, "sales")
    page = await (await client.get(f"/app/import/{job}")).text()
    assert "crm-core stopped while this import was running" in page
    assert "Change the mapping or run again" in page
    token = await csrf_of(client, f"/app/import/{job}")
    resp = await client.post(
        f"/app/import/{job}/start",
        data={"_csrf": token, "map_email": "email", "mode": "commit", "on_duplicate": "skip"},
        allow_redirects=False,
    )
    assert resp.status == 303
    resp = await client.post(f"/app/import/{job}/work", data={"_csrf": token}, allow_redirects=False)
    assert resp.status == 303
    done = await crm_conn.fetchrow("SELECT status, created, error FROM import_jobs WHERE id = $1", job)
    assert (done["status"], done["created"], done["error"]) == ("done", 3, None)


async def test_the_list_of_imports_shows_a_dead_run_failed_but_leaves_a_live_one_running(
    client: TestClient, auth_headers: H, crm_conn: asyncpg.Connection, pg_dsn: str, schema: str
) -> None:
    """Another replica's import that is still going must not be declared dead by this one."""
    admin = auth_headers["admin"]
    dead = await _left_running(client, admin, crm_conn)
    alive = await _left_running(client, admin, crm_conn)
    runner = await asyncpg.connect(pg_dsn, server_settings={"search_path": schema})
    try:
        await runner.fetchval(LOCK, alive)  # the live replica's runner holds its job's lock
        await sign_in(client, "sales")
        resp = await client.get("/app/import")
        assert resp.status == 200
        statuses = dict(await crm_conn.fetch("SELECT id, status FROM import_jobs"))
        assert statuses == {dead: "failed", alive: "running"}
        shown = await (await client.get(f"/api/v1/imports/{alive}", headers=admin)).json()
        assert shown["status"] == "running"
    finally:
        await runner.close()  # the replica dies: its lock goes with its connection
    shown = await (await client.get(f"/api/v1/imports/{alive}", headers=admin)).json()
    assert shown["status"] == "failed"


async def test_a_stopped_runs_counts_are_exactly_what_it_imported(
    client: TestClient, auth_headers: H, crm_conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reason an admin reads must be true: a chunk and the job's counts commit together, so a run stopped
    between a chunk's writes and its counts (here: the counts' write of the second chunk fails) imported exactly
    the rows its counts say, not a chunk more."""
    monkeypatch.setattr(jobs, "CHUNK", 3)
    monkeypatch.setattr(jobs, "PROGRESS", jobs.PROGRESS + " AND (CASE WHEN $2 > 3 THEN 1 / 0 ELSE 1 END) = 1")
    body = text([["email"]] + [[f"p{i}@corp.example"] for i in range(7)])
    resp = await client.post(
        "/api/v1/imports?kind=people&mode=commit",
        data=body,
        headers={**auth_headers["admin"], "Content-Type": "text/csv"},
    )
    assert resp.status >= 400  # the run stopped (the failed write is a DataError)
    job = await crm_conn.fetchrow("SELECT status, processed, created FROM import_jobs")
    assert (job["status"], job["processed"], job["created"]) == ("failed", 3, 3)
    assert await crm_conn.fetchval("SELECT count(*) FROM persons") == 3
