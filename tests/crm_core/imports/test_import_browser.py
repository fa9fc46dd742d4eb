"""An admin moving from a spreadsheet, in a real browser (headless Chromium through Playwright): a file that is not
CSV refused on the page, then upload, the suggested mapping and its preview, a dry run's counts, the import with
its progress bar polling the job, the report and the rejected rows downloaded. Screenshots are kept as test
artefacts (tests/crm_core/web.py's snap)."""

from __future__ import annotations

import asyncio
import csv
import io

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Page, Route

from collector.browser import launch_browser, new_page
from crm_core.web import PASSWORD, snap, user_with_password

pytestmark = pytest.mark.integration


def contacts() -> bytes:
    out = io.StringIO()
    w = csv.writer(out, delimiter=";")
    w.writerow(["Email", "Vorname", "First name", "Company", "Phone"])
    for i in range(300):
        w.writerow([f"c{i}@shop{i % 5}.example", f"V{i}", f"F{i}", "Shop", ""])
        if i == 99:
            w.writerow(["broken-address", "X", "X", "", ""])  # line 102
    return out.getvalue().encode()


async def sign_in(page: Page, base: str, email: str) -> None:
    await page.goto(base + "/app")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("form[action='/app/login'] button")
    await page.wait_for_url(base + "/app")


async def test_an_admin_imports_a_spreadsheet_in_the_browser(
    client: TestClient, crm_conn: asyncpg.Connection
) -> None:
    base = str(client.make_url("")).rstrip("/")
    email = await user_with_password(client, "admin")
    polls: list[str] = []

    async def slow_start(route: Route) -> None:
        await asyncio.sleep(2.5)  # long enough to see the bar poll the job before the run starts
        await route.continue_()

    async with launch_browser() as browser, new_page(browser) as page:
        page.on("request", lambda r: polls.append(r.url) if r.url.endswith("/progress") else None)
        await sign_in(page, base, email)
        await page.goto(base + "/app/import")

        # a spreadsheet saved as .xlsx is refused on the page, and nothing is kept
        await page.set_input_files("input[name=file]", files=[{"name": "contacts.xlsx", "mimeType":
                                   "application/octet-stream", "buffer": b"PK\x03\x04\x14\x00\x00\x00binary"}])  # fmt: skip
        await page.click("form[action='/app/import'] button")
        alert = page.locator("#upload-problem [role=alert]")
        await alert.wait_for()
        assert "binary file, not CSV" in await alert.inner_text()
        assert await crm_conn.fetchval("SELECT count(*) FROM import_jobs") == 0

        # upload: the mapping is suggested from the header, the preview shows the first rows as mapped
        await page.set_input_files("input[name=file]", files=[{"name": "contacts.csv", "mimeType": "text/csv",
                                                               "buffer": contacts()}])  # fmt: skip
        await page.click("form[action='/app/import'] button")
        await page.wait_for_url(f"{base}/app/import/*")
        assert await page.locator("select[name=map_email]").input_value() == "Email"
        assert await page.locator("select[name=map_first_name]").input_value() == "First name"
        preview = page.locator("#import-preview tbody tr")
        assert await preview.count() == 10
        assert "F0" in await preview.first.inner_text()
        await page.locator("select[name=map_first_name]").select_option("Vorname")  # the rep knows better
        await snap(page, "import-mapping")

        # the dry run: counts, nothing written
        await page.click("button[value=dry_run]")
        await page.locator("#import-counts").wait_for()
        assert await page.inner_text("[data-count=created]") == "300"
        assert await page.inner_text("[data-count=rejected]") == "1"
        assert await crm_conn.fetchval("SELECT count(*) FROM persons") == 0
        assert "V0" in await preview.first.inner_text()  # the preview as now mapped
        await snap(page, "import-dry-run")

        # the import, with the progress bar polling the job every second
        await page.route("**/work", slow_start)
        await page.click("button[value=commit]")
        await page.locator("progress").wait_for()
        await snap(page, "import-progress")
        await page.locator("text=Import finished.").wait_for(timeout=30_000)
        assert polls, "the progress bar never polled the job"
        assert await page.inner_text("[data-count=created]") == "300"
        assert await crm_conn.fetchval("SELECT count(*) FROM persons WHERE first_name LIKE 'V%'") == 300
        assert "broken-address" in await page.inner_text("main")
        await snap(page, "import-report")

        async with page.expect_download() as download:
            await page.click("a:text('Download the rejected rows')")
        path = await (await download.value).path()
        report = list(csv.reader(io.StringIO(path.read_text())))
        assert report == [["line", "reason", "row"],
                          ["102", "email: not a valid email address", "broken-address;X;X;;"]]  # fmt: skip
