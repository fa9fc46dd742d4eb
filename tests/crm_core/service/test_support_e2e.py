"""A customer sends a support form in headless Chromium and its thank-you page shows the case's tracking number
(issue 14): crm-core's form page posts to the real collector (which learnt the form from crm-core's outbox on
crm.config.v1), the collector answers with its 303 to crm-core's /support/thanks, and the number appears there by
itself once the post has gone through the enricher and crm-core's consumer, on the real broker and database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer, unused_port

from collector.browser import launch_browser, new_page
from crm_core.web import snap
from leadline_collector.app import SITES
from leadline_collector.app import create_app as create_collector
from leadline_collector.settings import CollectorSettings
from leadline_crm.app import create_app as create_crm
from leadline_crm.http import auth
from leadline_crm.settings import CrmSettings
from leadline_enricher.app import create_app as create_enricher
from leadline_enricher.settings import EnricherSettings
from leadline_shared import config, kafka

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


@pytest.fixture
async def stack(
    kafka_bootstrap: str, pg_dsn: str, schema: str, run_id: str, topics: kafka.Topics, tmp_path: Path
) -> AsyncIterator[tuple[TestClient, TestClient, dict[str, str]]]:
    """Collector, enricher and crm-core in this process; crm-core's support pages post to this collector."""
    common = {"LEADLINE_KAFKA_BOOTSTRAP": kafka_bootstrap, "LEADLINE_TOPIC_PREFIX": f"test-{run_id}.",
              "LEADLINE_PG_DSN": pg_dsn}  # fmt: skip
    identity_schema, port = f"{schema}_id", unused_port()
    enricher_env = common | {"LEADLINE_IDENTITY_SCHEMA": identity_schema,
                             "LEADLINE_ENRICHER_GROUP": f"enricher-{run_id}", "LEADLINE_INSTANCE_ID": "test"}  # fmt: skip
    crm_env = common | {"LEADLINE_CRM_SCHEMA": schema, "LEADLINE_CRM_GROUP": f"crm-{run_id}",
                        "LEADLINE_COLLECTOR_PUBLIC_URL": f"http://127.0.0.1:{port}"}  # fmt: skip
    collector_env = common | {"LEADLINE_SPOOL_DIR": str(tmp_path / "spool")}
    try:
        async with (
            TestClient(TestServer(create_collector(config.load(CollectorSettings, collector_env)),
                                  port=port)) as collector,
            TestClient(TestServer(create_enricher(config.load(EnricherSettings, enricher_env)))),
            TestClient(TestServer(create_crm(config.load(CrmSettings, crm_env)))) as crm,
        ):  # fmt: skip
            conn = await asyncpg.connect(pg_dsn, server_settings={"search_path": schema})
            try:
                token = await auth.create_token(conn, "marketer", "marketing")
            finally:
                await conn.close()
            yield crm, collector, {"Authorization": f"Bearer {token}"}
    finally:
        conn = await asyncpg.connect(pg_dsn)
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {identity_schema} CASCADE")
        finally:
            await conn.close()


async def test_a_support_form_opens_a_case_whose_number_shows_on_the_thank_you_page(
    stack: tuple[TestClient, TestClient, dict[str, str]], pg_dsn: str, schema: str
) -> None:
    crm, collector, headers = stack
    resp = await crm.post("/api/v1/forms", headers=headers, json={
        "key": "help", "name": "Contact support", "fields": ["email", "type", "subject", "message"],
        "required": ["email", "message"], "thank_you_url": "/support/thanks", "support": True})  # fmt: skip
    assert resp.status == 201, await resp.text()
    for _ in range(180):  # the collector learns the form from crm.config.v1
        if collector.app[SITES].form("help") is not None:
            break
        await asyncio.sleep(0.25)
    assert collector.app[SITES].form("help") is not None
    assert "support_ref" in collector.app[SITES].form("help").fields
    base = str(crm.make_url("")).rstrip("/")
    async with launch_browser() as browser, new_page(browser) as page:
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        await page.goto(base + "/support/forms/help")
        await page.fill("input[name=email]", "Ivy.Case@Example.com")
        await page.select_option("select[name=type]", "fault")
        await page.fill("input[name=subject]", "Display <stays> dark")
        await page.fill("textarea[name=message]", "Since Sunday the display is dark.")
        await page.click("button[type=submit]")
        await page.wait_for_url(base + "/support/thanks")
        await page.wait_for_selector("#tracking-number", timeout=60_000)
        number = await page.inner_text("#tracking-number")
        await snap(page, "support-e2e-thanks")
        assert not [e for e in errors if "Content Security Policy" in e], errors
    conn = await asyncpg.connect(pg_dsn, server_settings={"search_path": schema})
    try:
        row = await conn.fetchrow(
            "SELECT c.type, c.subject, c.description, p.emails FROM cases c JOIN persons p USING (person_id)"
            " WHERE c.tracking_number = $1",
            number,
        )
    finally:
        await conn.close()
    assert (row["type"], row["subject"], row["description"]) == (
        "fault", "Display <stays> dark", "Since Sunday the display is dark.")  # fmt: skip
    assert row["emails"] == ["ivy.case@example.com"]
