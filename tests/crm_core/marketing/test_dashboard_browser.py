"""A marketer's dashboard in a real browser (headless Chromium through Playwright): the fixed month's funnel,
ads, affiliates and products with the numbers the reports give, the charts drawn, the attribution model switched
with the controls, and a CSV download equal to the API's rows. Screenshots are kept (tests/crm_core/web.py snap).
"""

from __future__ import annotations

import csv
import io

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Page

from collector.browser import launch_browser, new_page
from crm_core.marketing.dataset import add_second_product, at, newsletter, seed, shown
from crm_core.web import PASSWORD, snap, user_with_password
from leadline_crm.http.keys import POOL

pytestmark = pytest.mark.integration

MARCH = "from=2026-03-01&to=2026-03-31"


async def sign_in(page: Page, base: str, email: str) -> None:
    await page.goto(base + "/app")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("form[action='/app/login'] button")
    await page.wait_for_url(base + "/app")


async def cells(page: Page, row: str) -> list[str]:
    return [t.strip() for t in await page.locator(row + " td").all_inner_texts()]


async def test_the_dashboard_shows_the_months_reports(client: TestClient) -> None:
    async with client.server.app[POOL].acquire() as conn:
        await newsletter(conn, await seed(conn))
        await shown(conn, at(3))  # a1 shown 10 times: a click-through of 20 %
    base = str(client.make_url("")).rstrip("/")
    email = await user_with_password(client, "marketing")
    async with launch_browser() as browser, new_page(browser) as page:
        await sign_in(page, base, email)
        await page.click("header nav a:text-is('Marketing')")
        await page.goto(f"{base}/app/marketing?{MARCH}&model=first")
        await page.wait_for_selector("figure.chart canvas")  # uPlot drew the charts, with no network
        funnel = {s: await page.inner_text(f"#funnel [data-stage={s}] b") for s in ("visitors", "leads",
                                                                                 "prospects", "customers")}  # fmt: skip
        assert funnel == {"visitors": "3", "leads": "3", "prospects": "3", "customers": "2"}
        assert await cells(page, "tr[data-ad='blog/a1']") == [
            "Banner A1", "blog", "Spring", "10", "2", "20.0%", "1.0", "1.0", "50.0%", "180.00"]  # fmt: skip
        assert await cells(page, "tr[data-affiliate='blog']") == [
            "The Blog",
            "3",
            "3",
            "2.0",
            "1.0",
            "180.00",
        ]
        assert await cells(page, "tr[data-sku='W1']") == [
            "W1", "Widget", "3", "280.00", "93.33", "95.00", "90.00", "100.00", "100.00"]  # fmt: skip
        assert await cells(page, "tr[data-campaign='Newsletter']") == [
            "Newsletter", "2", "1", "1", "50.0%", "50.0%", "1.0", "1.0", "180.00"]  # fmt: skip
        assert await cells(page, "tr[data-device='(unknown)']") == ["(unknown)", "1", "2"]
        # the funnel's stages by source follow the model (test_funnel_attribution.py computes them by hand)
        assert await cells(page, "tr[data-source='blog']") == ["blog", "2", "2.0", "2.0", "1.0", "4.48"]
        assert await page.locator("figure.chart canvas").count() == 7
        assert "Holt linear trend" in await page.inner_text("#forecast-method")
        await snap(page, "marketing-dashboard-first-click")

        await page.select_option("select[name=model]", "linear")
        await page.click("form[aria-label='Report controls'] button")
        await page.wait_for_url("**model=linear**")
        assert await cells(page, "tr[data-ad='news/n1']") == [
            "News N1", "news", "", "0", "2", "0.0%", "0.8333", "0.5", "25.0%", "90.00"]  # fmt: skip
        assert await cells(page, "tr[data-source='news']") == ["news", "0", "0.8333", "0.8333", "0.5", "4.48"]
        await snap(page, "marketing-dashboard-linear")

        href = await page.get_attribute("a[href^='/app/marketing/ads.csv']", "href")
        assert href is not None
        download = await page.request.get(base + href)
        rows = list(csv.DictReader(io.StringIO(await download.text())))
    api = await user_api_rows(client, href)
    assert rows == api


async def user_api_rows(client: TestClient, href: str) -> list[dict[str, str]]:
    """The API's JSON rows for the same query, as CSV cells."""
    from leadline_crm.http import auth

    async with client.server.app[POOL].acquire() as conn:
        token = await auth.create_token(conn, "t-marketing", "marketing")
    query = href.split("?", 1)[1]
    resp = await client.get(f"/api/v1/reports/ads?{query}", headers={"Authorization": f"Bearer {token}"})
    return [{k: str(v) for k, v in row.items()} for row in (await resp.json())["rows"]]


async def test_the_person_page_shows_next_products(client: TestClient) -> None:
    """B bought W1; the others who bought W1 also bought W2 (in the same month): B's page suggests W2, loaded into
    the page after it is shown."""
    async with client.server.app[POOL].acquire() as conn:
        m = await seed(conn)
        await add_second_product(conn, m)
        # the page looks at the last year: move the month's purchases to a month ago
        await conn.execute(
            "UPDATE purchases SET purchased_on = current_date - 30 + (purchased_on - date '2026-03-01')"
        )
    base = str(client.make_url("")).rstrip("/")
    email = await user_with_password(client, "sales")
    async with launch_browser() as browser, new_page(browser) as page:
        await sign_in(page, base, email)
        await page.goto(f"{base}/app/persons/{m.b}")
        await page.wait_for_selector("#suggestions tr[data-sku='W2']")
        [row] = await page.locator("#suggestions-table tbody tr").all()
        assert [t.strip() for t in await row.locator("td").all_inner_texts()] == [
            "Gadget (W2)", "50.00", "66.7%", "1.0", "W1"]  # fmt: skip
        await snap(page, "person-next-products")
        await page.goto(f"{base}/app/persons/{m.a}")  # has both: nothing to suggest
        await page.wait_for_selector("#suggestions p.hint:has-text('No suggestions')")
    resp = await client.get(f"/app/persons/{m.b}/suggestions", allow_redirects=False)
    assert resp.status == 303  # not signed in: off to the sign-in page
    assert resp.headers["Location"].startswith("/app/login?")
    assert (await client.get("/app/persons/not-a-uuid/suggestions", allow_redirects=False)).status == 303
