"""An admin creates a lead form on the settings page in real headless Chromium, copies its embed code with the
page's Copy button, and that code, pasted into a customer's page, posts a lead that arrives in crm-core: through
the real collector (which learns the form from crm-core's outbox on crm.config.v1), the enricher and crm-core's
consumer, on the real broker and database. The visitor's markup in a field comes out as text in the people list.
In the same browser the email-link builder takes a recipients CSV and downloads signed links that the collector
follows to their destination. Screenshots of each step are kept (tests/crm_core/web.py's snap)."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, unused_port
from playwright.async_api import Page, expect

from collector.browser import launch_browser, new_page
from crm_core.web import PASSWORD, snap, user_with_password
from leadline_collector.app import SITES
from leadline_collector.app import create_app as create_collector
from leadline_collector.settings import CollectorSettings
from leadline_crm.app import create_app as create_crm
from leadline_crm.http import auth
from leadline_crm.settings import CrmSettings
from leadline_enricher.app import create_app as create_enricher
from leadline_enricher.settings import EnricherSettings
from leadline_shared import config, kafka
from sites import LINK_KEYS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

XSS = "<script>window.pwned=1</script>"


@dataclass
class Stack:
    crm: TestClient
    collector: TestClient
    site: TestServer
    page_html: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def url(self, client: TestClient, path: str) -> str:
        return str(client.make_url(path))


def customer_site(pages: dict[str, str]) -> web.Application:
    """The customer's site: the page the embed code is pasted into, and the thank-you page."""

    async def landing(request: web.Request) -> web.Response:
        return web.Response(text=pages["/"], content_type="text/html")

    async def thanks(request: web.Request) -> web.Response:
        return web.Response(
            text="<!doctype html><title>Thanks</title><h1>Thanks!</h1>", content_type="text/html"
        )

    app = web.Application()
    app.router.add_get("/", landing)
    app.router.add_get("/thanks", thanks)
    return app


@pytest.fixture
async def stack(
    kafka_bootstrap: str, pg_dsn: str, schema: str, run_id: str, topics: kafka.Topics, tmp_path: Path
) -> AsyncIterator[Stack]:
    """Collector, enricher and crm-core in this process; crm-core's embed codes point at this collector."""
    common = {
        "LEADLINE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "LEADLINE_TOPIC_PREFIX": f"test-{run_id}.",
        "LEADLINE_PG_DSN": pg_dsn,
    }
    identity_schema = f"{schema}_id"
    collector_port = unused_port()
    enricher_env = common | {
        "LEADLINE_IDENTITY_SCHEMA": identity_schema,
        "LEADLINE_ENRICHER_GROUP": f"enricher-{run_id}",
        "LEADLINE_INSTANCE_ID": "test",
    }
    crm_env = common | {
        "LEADLINE_CRM_SCHEMA": schema,
        "LEADLINE_CRM_GROUP": f"crm-{run_id}",
        "LEADLINE_COLLECTOR_PUBLIC_URL": f"http://127.0.0.1:{collector_port}",
        "LEADLINE_LINK_KEYS": LINK_KEYS,
    }
    collector_env = common | {"LEADLINE_SPOOL_DIR": str(tmp_path / "spool"), "LEADLINE_LINK_KEYS": LINK_KEYS}
    pages: dict[str, str] = {"/": ""}
    try:
        async with (
            TestClient(TestServer(create_collector(config.load(CollectorSettings, collector_env)),
                                  port=collector_port)) as collector,
            TestClient(TestServer(create_enricher(config.load(EnricherSettings, enricher_env)))),
            TestClient(TestServer(create_crm(config.load(CrmSettings, crm_env)))) as crm,
            TestServer(customer_site(pages)) as site,
        ):  # fmt: skip
            conn = await asyncpg.connect(pg_dsn, server_settings={"search_path": schema})
            try:
                token = await auth.create_token(conn, "checker", "read_only")
            finally:
                await conn.close()
            yield Stack(crm, collector, site, pages, {"Authorization": f"Bearer {token}"})
    finally:
        conn = await asyncpg.connect(pg_dsn)
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {identity_schema} CASCADE")
        finally:
            await conn.close()


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 45.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if result := await check():
            return result
        await asyncio.sleep(0.25)
    pytest.fail(f"{what}: not within {timeout}s")


async def test_an_admin_creates_a_form_and_its_embed_code_posts_a_lead_into_the_crm(stack: Stack) -> None:
    email = await user_with_password(stack.crm, "admin")
    crm = stack.crm.make_url("").human_repr().rstrip("/")
    async with launch_browser() as browser:
        async with new_page(browser, permissions=["clipboard-read", "clipboard-write"]) as page:
            alerts: list[str] = []
            page.on("dialog", lambda d: (alerts.append(d.message), asyncio.ensure_future(d.dismiss())))
            await page.goto(f"{crm}/app/login?next=/app/settings")
            await page.fill("input[name=email]", email)
            await page.fill("input[name=password]", PASSWORD)
            await page.click("form[action='/app/login'] button")
            await page.wait_for_url(f"{crm}/app/settings")
            await page.click("a[href='/app/settings/forms']")
            await page.click("a[href='/app/settings/forms/new']")
            await page.fill("#f-key", "get-a-quote")
            await page.fill("#f-name", "Get a quote")
            await page.fill("#f-fields", "email\nfirst_name\nlast_name\ncompany\nmessage")
            await page.fill("#f-thank_you_url", "/thanks")
            await snap(page, "settings-form-new")
            await page.click("form[action='/app/settings/forms'] button")
            await page.wait_for_url(f"{crm}/app/settings/forms/get-a-quote?saved=1")
            await page.click("button[data-copy='#embed-code']")
            await expect(page.locator("button[data-copy='#embed-code']")).to_have_text("Copied")
            embed = await page.evaluate("navigator.clipboard.readText()")
            await page.click("button[data-copy='#snippet-tag']")
            await expect(page.locator("button[data-copy='#snippet-tag']")).to_have_text("Copied")
            tag = await page.evaluate("navigator.clipboard.readText()")
            await snap(page, "settings-form-embed")
            await page.goto(f"{crm}/app/settings")
            await snap(page, "settings-index")
            links_csv = await build_links(page, crm, str(stack.site.make_url("/thanks")))
        collector = f"http://127.0.0.1:{stack.collector.server.port}"
        assert f'action="{collector}/f/get-a-quote"' in embed
        assert tag == f'<script async src="{collector}/s.js"></script>'

        stack.page_html["/"] = (
            "<!doctype html><html><head><meta charset='utf-8'><title>Acme: get a quote</title>"
            f"{tag}</head><body><h1>Get a quote</h1>{embed}</body></html>"
        )
        await eventually(
            lambda: _true(stack.collector.app[SITES].form("get-a-quote")), "the collector knows the form"
        )
        [recipient] = csv.DictReader(io.StringIO(links_csv))
        assert recipient["email"] == "ada@example.com"
        assert recipient["click_url"].startswith(f"{collector}/c/")

        async with new_page(browser) as visitor:
            await visitor.goto(str(stack.site.make_url("/")))
            await visitor.fill("input[name=email]", "Quote.Seeker@Example.com")
            await visitor.fill("input[name=first_name]", "Quinn")
            await visitor.fill("input[name=last_name]", XSS)
            await visitor.fill("input[name=company]", "Acme Roofing")
            await visitor.fill("textarea[name=message]", "Ten panels, please")
            await snap(visitor, "embed-form-filled")
            await visitor.click("button[type=submit]")
            await visitor.wait_for_url(str(stack.site.make_url("/thanks")))
            assert await visitor.text_content("h1") == "Thanks!"

        async with new_page(browser) as reader:  # the email's reader follows the signed link
            await reader.goto(recipient["click_url"])
            await reader.wait_for_url(str(stack.site.make_url("/thanks")))

        async def lead() -> dict[str, Any] | None:
            resp = await stack.crm.get("/api/v1/persons", params={"email": "quote.seeker@example.com"},
                                       headers=stack.headers)  # fmt: skip
            items: list[dict[str, Any]] = (await resp.json())["items"]
            return items[0] if items else None

        person = await eventually(lead, "the lead in crm-core")
        assert person["first_name"] == "Quinn"
        assert person["company"] == "Acme Roofing"
        assert person["stage"] == "lead"

        async with new_page(browser) as admin_page:
            await admin_page.goto(f"{crm}/app/login")
            await admin_page.fill("input[name=email]", email)
            await admin_page.fill("input[name=password]", PASSWORD)
            await admin_page.click("form[action='/app/login'] button")
            await admin_page.wait_for_url(f"{crm}/app")
            listing = await admin_page.goto(f"{crm}/app/people?q=quote.seeker%40example.com")
            assert listing is not None
            assert listing.status == 200
            assert XSS in (await admin_page.text_content("main") or "")  # shown as text
            assert await admin_page.evaluate("window.pwned === undefined")
            await snap(admin_page, "embed-lead-in-crm")
    assert alerts == []


async def build_links(page: Page, crm: str, target: str) -> str:
    """Use the email-link builder in the browser: upload a CSV of recipients, download the links file."""
    await page.goto(f"{crm}/app/settings/links")
    await page.set_input_files(
        "#f-recipients",
        files=[{"name": "list.csv", "mimeType": "text/csv", "buffer": b"email,name\nada@example.com,Ada\n"}],
    )
    await page.fill("#f-target", target)
    await page.fill("#f-subject", "Spring news")
    await snap(page, "settings-link-builder")
    async with page.expect_download() as download_info:
        await page.click("form[action='/app/settings/links'] button")
    download = await download_info.value
    assert download.suggested_filename.startswith("links-")
    return Path(await download.path()).read_text()


async def _true(value: object) -> bool:
    return value is not None
