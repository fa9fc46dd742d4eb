"""Ad impressions through the whole pipeline (issue 13): the collector's impression pixel → capture.raw.v1 → the
enricher (no identifier: no identity resolution, nobody made) → crm-core's impression rollup, and the ads report's
click-through rate; a crawler's impression is left out, and no person appears but the one who clicked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from leadline_collector.app import SITES
from leadline_collector.app import create_app as create_collector
from leadline_collector.settings import CollectorSettings
from leadline_crm.app import create_app as create_crm
from leadline_crm.http import auth
from leadline_crm.settings import CrmSettings
from leadline_enricher.app import create_app as create_enricher
from leadline_enricher.settings import EnricherSettings
from leadline_shared import config, kafka
from sites import AD, LINK_KEYS, publish_config

pytestmark = pytest.mark.integration

BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"}
GOOGLEBOT = {"User-Agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}


@dataclass
class Stack:
    collector: TestClient
    crm: TestClient
    db: asyncpg.Connection
    token: str


@pytest.fixture
async def stack(
    kafka_bootstrap: str, pg_dsn: str, schema: str, run_id: str, topics: kafka.Topics, tmp_path: Path
) -> AsyncIterator[Stack]:
    await publish_config(kafka_bootstrap, topics.config, [AD])
    common = {
        "LEADLINE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "LEADLINE_TOPIC_PREFIX": f"test-{run_id}.",
        "LEADLINE_PG_DSN": pg_dsn,
    }
    identity_schema = f"{schema}_id"
    collector_env = common | {"LEADLINE_SPOOL_DIR": str(tmp_path / "spool"), "LEADLINE_LINK_KEYS": LINK_KEYS}
    enricher_env = common | {
        "LEADLINE_IDENTITY_SCHEMA": identity_schema,
        "LEADLINE_ENRICHER_GROUP": f"enricher-{run_id}",
        "LEADLINE_INSTANCE_ID": "test",
    }
    crm_env = common | {"LEADLINE_CRM_SCHEMA": schema, "LEADLINE_CRM_GROUP": f"crm-{run_id}"}
    try:
        async with (
            TestClient(TestServer(create_enricher(config.load(EnricherSettings, enricher_env)))),
            TestClient(TestServer(create_crm(config.load(CrmSettings, crm_env)))) as crm,
            TestClient(
                TestServer(create_collector(config.load(CollectorSettings, collector_env)))
            ) as collector,
        ):
            conn = await asyncpg.connect(pg_dsn, server_settings={"search_path": schema})
            try:
                token = await auth.create_token(conn, "marketer", "marketing")
                yield Stack(collector, crm, conn, token)
            finally:
                await conn.close()
    finally:
        conn = await asyncpg.connect(pg_dsn)
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {identity_schema} CASCADE")
        finally:
            await conn.close()


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 30.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if result := await check():
            return result
        await asyncio.sleep(0.2)
    pytest.fail(f"{what}: not within {timeout}s")


async def test_impressions_reach_the_rollup_and_the_ads_report_shows_click_through(stack: Stack) -> None:
    sites = stack.collector.server.app[SITES]  # type: ignore[attr-defined]

    async def known() -> bool:  # the collector follows crm.config.v1: wait until it knows the ad
        return sites.ad("aff1", "ad1") is not None

    await eventually(known, "the collector learning the ad")
    for _ in range(4):
        resp = await stack.collector.get("/a/aff1/ad1/i.gif", headers=BROWSER)
        assert resp.status == 200
        assert "Set-Cookie" not in resp.headers
    assert (await stack.collector.get("/a/aff1/ad1/i.gif", headers=GOOGLEBOT)).status == 200
    click = await stack.collector.get("/a/aff1/ad1", headers=BROWSER, allow_redirects=False)
    assert click.status == 302

    async def counted() -> bool:
        shown = await stack.db.fetchval("SELECT sum(impressions) FROM marketing_impressions_daily")
        clicks = await stack.db.fetchval("SELECT count(*) FROM marketing_clicks")
        return shown == 4 and clicks == 1

    await eventually(counted, "4 impressions and 1 click counted")
    assert await stack.db.fetchval("SELECT count(*) FROM persons") == 1  # the clicker only
    assert await stack.db.fetchval("SELECT count(*) FROM touchpoints WHERE type = 'ad_impression'") == 0
    today = datetime.now(UTC).date().isoformat()
    resp = await stack.crm.get(
        f"/api/v1/reports/ads?from={today}&to={today}", headers={"Authorization": f"Bearer {stack.token}"}
    )
    assert resp.status == 200, await resp.text()
    [row] = (await resp.json())["rows"]
    assert (row["affiliate_id"], row["ad_id"], row["impressions"], row["clicks"]) == ("aff1", "ad1", 4, 1)
    assert row["click_through_rate"] == 0.25
