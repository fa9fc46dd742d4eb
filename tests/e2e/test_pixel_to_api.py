"""The thinnest flow end to end, as `make up` runs it: three `leadline` processes, a real broker and database.

A pixel hit on the collector must be readable through crm-core's API within 5 seconds, and every service must
stop cleanly on SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from leadline_localstack import procs, services

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@dataclass(frozen=True)
class Stack:
    ports: dict[str, int]
    env: dict[str, str]


@pytest.fixture
def stack(kafka_bootstrap: str, pg_dsn: str, run_id: str, tmp_path: Path) -> Iterator[Stack]:
    ports = {"collector": procs.free_port(), "enricher": procs.free_port(), "crm-core": procs.free_port()}
    env = services.service_env(
        kafka_bootstrap,
        pg_dsn,
        LEADLINE_TOPIC_PREFIX=f"e2e-{run_id}.",
        LEADLINE_IDENTITY_SCHEMA=f"e2e_id_{run_id}",
        LEADLINE_CRM_SCHEMA=f"e2e_crm_{run_id}",
        LEADLINE_ENRICHER_GROUP=f"enricher-{run_id}",
        LEADLINE_CRM_GROUP=f"crm-{run_id}",
        LEADLINE_COLLECTOR_PORT=str(ports["collector"]),
        LEADLINE_ENRICHER_PORT=str(ports["enricher"]),
        LEADLINE_CRM_PORT=str(ports["crm-core"]),
        LEADLINE_TOPIC_PARTITIONS="3",
        LEADLINE_SPOOL_DIR=str(tmp_path / "spool"),
    )
    try:
        for spec in services.SERVICES:
            services.start_service(tmp_path, spec, env)
        yield Stack(ports, env)
    finally:
        for spec in services.SERVICES:
            services.stop_service(tmp_path, spec.name)
        asyncio.run(_drop_schemas(pg_dsn, run_id))


async def _drop_schemas(dsn: str, run_id: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for schema in (f"e2e_id_{run_id}", f"e2e_crm_{run_id}"):
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


def admin_token(env: dict[str, str]) -> str:
    out = subprocess.run(
        services.leadline_command("token", "--role", "admin"),
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


async def test_a_pixel_hit_is_visible_through_the_api_within_five_seconds(stack: Stack) -> None:
    token = admin_token(stack.env)
    async with aiohttp.ClientSession() as http:
        started = time.monotonic()
        async with http.get(
            f"http://127.0.0.1:{stack.ports['collector']}/p.gif",
            params={"url": "https://shop.example/pricing"},
        ) as resp:
            assert resp.status == 200
            vid = resp.cookies["ll_vid"].value
        items: list[dict[str, object]] = []
        while time.monotonic() - started < 5.0 and not items:
            async with http.get(
                f"http://127.0.0.1:{stack.ports['crm-core']}/api/v1/events",
                params={"anon_id": vid},
                headers={"Authorization": f"Bearer {token}"},
            ) as resp:
                assert resp.status == 200
                items = (await resp.json())["items"]
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - started
    assert items, f"the pixel hit did not reach the API within 5 s ({elapsed:.1f}s)"
    [event] = items
    assert event["anon_id"] == vid
    assert event["type"] == "page_view"
    assert event["person_id"]
    assert event["context"]["url"] == "https://shop.example/pricing"  # type: ignore[index]


def test_every_service_exits_cleanly_on_sigterm(stack: Stack, tmp_path: Path) -> None:
    for spec in services.SERVICES:
        pid = services.running_pid(tmp_path, spec.name)
        assert pid is not None
        proc = procs._CHILDREN[pid]
        os.kill(pid, signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, f"{spec.name} exited with {proc.returncode}"
        log = services.log_path(tmp_path, spec.name).read_text()
        assert '"msg":"stopped"' in log
