"""A rep's day in a real browser (headless Chromium through Playwright, Debian's chromium): entering a lead and
meeting the duplicate warning, logging a call and seeing it on the timeline, recording a purchase, editing a custom
field; captured markup shown as text; the home page's chart drawn by the vendored library with no network; the
person page on a phone's screen and reachable by keyboard. Screenshots are kept as test artefacts."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Dialog, Page

from collector.browser import launch_browser, new_page
from crm_core.web import PASSWORD, snap, user_with_password

pytestmark = pytest.mark.integration

H = dict[str, dict[str, str]]


async def api(client: TestClient, headers: dict[str, str], path: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post(path, json=body, headers=headers)
    assert resp.status == 201, await resp.text()
    doc: dict[str, Any] = await resp.json()
    return doc


async def sign_in(page: Page, base: str, email: str) -> None:
    await page.goto(base + "/app")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("form[action='/app/login'] button")
    await page.wait_for_url(base + "/app")


async def test_a_reps_day_in_the_browser(client: TestClient, auth_headers: H) -> None:
    admin = auth_headers["admin"]
    await api(client, admin, "/api/v1/field_definitions", {"name": "budget", "label": "Budget", "type": "number",
                                                            "required": True})  # fmt: skip
    await api(
        client, admin, "/api/v1/products", {"sku": "BAT-10", "name": "Home battery", "list_price": 6900}
    )
    known = await api(client, admin, "/api/v1/leads", {"email": "dup@example.com", "first_name": "Dana"})
    await api(
        client,
        admin,
        "/api/v1/leads",
        {"email": "xss@example.com", "first_name": "<img src=x onerror=alert(1)>"},
    )
    base = str(client.make_url("")).rstrip("/")
    email = await user_with_password(client, "sales")
    dialogs: list[str] = []

    async def refuse(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    async with launch_browser() as browser, new_page(browser) as page:
        page.on("dialog", refuse)
        await sign_in(page, base, email)
        # the home page's chart is drawn by the vendored uPlot: no network is needed (none is reachable here)
        await page.wait_for_selector("figure.chart canvas")
        await snap(page, "people-home")

        # a lead whose email is known: the duplicate warning links to the existing person
        await page.click("nav >> text=New lead")
        await page.fill("input[name=email]", "DUP@example.com")
        await page.fill("input[name=first_name]", "Dan")
        await page.click("main form button")
        warning = page.locator("[role=alert]")
        assert "exists" in await warning.first.inner_text()
        assert await page.locator(f"a[href='/app/persons/{known['id']}']").count() == 1
        await snap(page, "people-duplicate-warning")
        # the rep enters a new lead instead; a required custom field does not block it
        await page.fill("input[name=email]", "nia@example.com")
        await page.fill("input[name=first_name]", "Nia")
        await page.click("main form button")
        await page.wait_for_url(f"{base}/app/persons/*")
        assert "Required custom fields still empty: Budget" in await page.inner_text("main")

        # a call, with its next step
        await page.select_option("form[action$='/activities'] select[name=kind]", "phone_call")
        await page.fill("form[action$='/activities'] input[name=outcome]", "interested in a battery")
        await page.fill("form[action$='/activities'] input[name=next_step]", "send the offer")
        await page.click("form[action$='/activities'] button")
        assert "Activity logged" in await page.inner_text("[role=status]")
        timeline = await page.inner_text("#timeline-h + ol")
        assert "phone call" in timeline
        assert "interested in a battery" in timeline
        assert "lead → prospect" in timeline

        # a purchase
        await page.click("text=Record a purchase")
        await page.select_option("select[name=product_id]", label="Home battery (6,900.00 EUR)")
        await page.fill(
            "form[action$='/purchases'] textarea[name=special_instructions]", "install in the garage"
        )
        await page.click("form[action$='/purchases'] button")
        assert "Purchase recorded" in await page.inner_text("[role=status]")
        purchases = await page.inner_text("#buy-h + .table-wrap")
        assert "Home battery" in purchases
        assert "6,900.00 EUR" in purchases
        assert "install in the garage" in purchases
        assert "customer" in await page.inner_text("h1")

        # a custom field
        await page.fill("input[name=f_budget]", "12000")
        await page.click("form[action$='/fields'] button")
        assert await page.input_value("input[name=f_budget]") == "12000"
        assert "Required custom fields still empty" not in await page.inner_text("main")
        await snap(page, "people-person-page")

        # captured markup is text, never markup
        await page.goto(base + "/app/people?q=xss")
        assert "<img src=x onerror=alert(1)>" in await page.inner_text("main table")
        assert await page.locator("main table img").count() == 0

    async with (
        launch_browser() as browser,
        new_page(browser, viewport={"width": 390, "height": 844}, is_mobile=True) as phone,
    ):
        phone.on("dialog", refuse)
        await sign_in(phone, base, email)
        await phone.goto(base + "/app/people?q=nia")
        await phone.click("text=Nia")
        overflow = await phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, "the person page fits a phone's width"
        await snap(phone, "people-person-page-phone")
        # keyboard: the first Tab reaches the skip link, which leads to the content
        await phone.keyboard.press("Tab")
        assert await phone.evaluate("document.activeElement.textContent") == "Skip to content"
    assert dialogs == [], "no captured value ran as script"
