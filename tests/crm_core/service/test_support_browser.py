"""The public support pages and the service report in a real browser (headless Chromium): the thank-you page shows
the tracking number by itself once ingestion has opened the case (htmx polling, no inline script); the customer's
status page shows the status and the public comment, never the internal one; the report page draws its chart;
none of them breaks the CSP."""

from __future__ import annotations

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from collector.browser import launch_browser, new_page
from crm_core.builders import event
from crm_core.service.helpers import api, case, person
from crm_core.web import PASSWORD, snap, user_with_password
from leadline_crm.ingest.touches import write_batch
from leadline_shared.ids import new_id

pytestmark = pytest.mark.integration

H = dict[str, dict[str, str]]


async def test_the_thank_you_page_shows_the_number_once_the_case_is_opened(
    client: TestClient, auth_headers: H, crm_conn: asyncpg.Connection
) -> None:
    base = str(client.make_url("")).rstrip("/")
    await api(client, "POST", "/api/v1/forms", auth_headers["marketing"], 201, json={
        "key": "help", "fields": ["email", "subject", "message"], "thank_you_url": "/support/thanks",
        "support": True})  # fmt: skip
    async with launch_browser() as browser, new_page(browser) as page:
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        await page.goto(base + "/support/forms/help")
        ref = await page.get_attribute("input[name=support_ref]", "value")
        assert ref
        assert await page.locator("textarea[name=message]").count() == 1
        await page.goto(base + "/support/thanks")  # where the collector's 303 lands
        assert "appears here in a moment" in await page.inner_text("#submission")
        ev = event(new_id(), "form_submit", form={"key": "help", "fields": {
            "email": "t@example.com", "subject": "Gate stuck", "message": "It will not open", "support_ref": ref}},
            ids={"email": "t@example.com"})  # fmt: skip
        await write_batch(crm_conn, [ev])
        number = await crm_conn.fetchval("SELECT tracking_number FROM cases WHERE form_ref = $1", ref)
        await page.wait_for_selector("#tracking-number", timeout=10_000)
        assert await page.inner_text("#tracking-number") == number
        await snap(page, "support-thanks")
        assert not [e for e in errors if "Content Security Policy" in e], errors


async def test_a_customer_sees_status_and_public_comments_only(client: TestClient, auth_headers: H) -> None:
    base = str(client.make_url("")).rstrip("/")
    pid = await person(client, auth_headers["sales"], "cus@example.com", first_name="Cus")
    number = (await case(client, auth_headers["service"], pid, subject="Heater <b>cold</b>"))[
        "tracking_number"
    ]
    await api(
        client,
        "POST",
        f"/api/v1/cases/{number}/status",
        auth_headers["service"],
        200,
        json={"status": "open"},
    )
    for body, public in (("A technician comes on Monday.", True), ("INTERNAL: customer was rude", False)):
        await api(client, "POST", f"/api/v1/cases/{number}/comments", auth_headers["service"], 201,
                  json={"body": body, "public": public})  # fmt: skip
    async with launch_browser() as browser, new_page(browser) as page:
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        await page.goto(base + "/support/status")
        await page.fill("input[name=tracking_number]", number)
        await page.fill("input[name=email]", "someone.else@example.com")
        await page.click("form[action='/support/status'] button")
        assert "We found no case" in await page.inner_text("[role=alert]")
        await page.fill("input[name=email]", "cus@example.com")
        await page.click("form[action='/support/status'] button")
        main = await page.inner_text("main")
        assert "Heater <b>cold</b>" in main  # shown as text
        assert await page.inner_text("#case-status") == "being worked on"
        assert "A technician comes on Monday." in await page.inner_text("#public-comments")
        assert "INTERNAL" not in main
        await snap(page, "support-status")
        assert not [e for e in errors if "Content Security Policy" in e], errors


async def test_the_service_report_page_draws_its_chart(client: TestClient, auth_headers: H) -> None:
    base = str(client.make_url("")).rstrip("/")
    pid = await person(client, auth_headers["sales"], "rep@example.org")
    for kind in ("complaint", "complaint", "question"):
        await case(client, auth_headers["service"], pid, type=kind)
    email = await user_with_password(client, "service")
    async with launch_browser() as browser, new_page(browser) as page:
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        await page.goto(base + "/app/service/report")
        await page.fill("input[name=email]", email)
        await page.fill("input[name=password]", PASSWORD)
        await page.click("form[action='/app/login'] button")
        await page.wait_for_url(base + "/app/service/report")
        await page.wait_for_selector("figure.chart canvas", timeout=10_000)
        assert "2" in await page.inner_text("[data-type=complaint]")
        assert "complaint" in await page.inner_text("#report-table")
        await snap(page, "service-report")
        assert not errors, errors
