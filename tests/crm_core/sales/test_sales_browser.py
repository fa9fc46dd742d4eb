"""A rep's day in sales, in a real browser (headless Chromium through Playwright, Debian's chromium): the overdue
task on the home page, the deal board, a deal dragged to another stage (app.js posts the card's own move form with
htmx), another moved with the card's form, a loss refused without a reason, the task completed, the dashboard's
charts drawn. Screenshots are kept as test artefacts (tests/crm_core/web.py's snap)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Dialog, Page

from collector.browser import launch_browser, new_page
from crm_core.web import PASSWORD, snap, user_with_password

pytestmark = pytest.mark.integration

H = dict[str, dict[str, str]]
GRAB = {"x": 12, "y": 10}  # a card's title, where a drag starts


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


def column(page: Page, name: str) -> Any:
    return page.locator(".board-col", has=page.locator(f"h2:text-is('{name}')")).first


async def test_a_reps_day_on_the_board(client: TestClient, auth_headers: H) -> None:
    sales = auth_headers["sales"]
    company = await api(client, sales, "/api/v1/companies", {"name": "Initech", "domain": "initech.example"})
    person = await api(
        client, sales, "/api/v1/leads", {"email": "peter@initech.example", "first_name": "Peter"}
    )
    for title, amount in (("Initech printers", 4200), ("Initech TPS", 900)):
        await api(client, sales, "/api/v1/deals", {"title": title, "amount": amount, "person_id": person["id"],
                                                   "company_id": company["id"]})  # fmt: skip
    due = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    await api(client, sales, "/api/v1/tasks", {"title": "Call Peter about the TPS reports", "due_at": due,
                                               "person_id": person["id"]})  # fmt: skip
    base = str(client.make_url("")).rstrip("/")
    email = await user_with_password(client, "sales")
    dialogs: list[str] = []

    async def answer(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()  # no reason given for a loss

    async with launch_browser() as browser, new_page(browser) as page:
        page.on("dialog", answer)
        await sign_in(page, base, email)
        overdue = page.locator("tr[data-task='Call Peter about the TPS reports']")
        assert await overdue.count() == 1
        await snap(page, "sales-home-overdue-task")

        await page.click("header nav a:text-is('Sales')")
        await page.wait_for_url(base + "/app/sales")
        await page.wait_for_selector("figure.chart canvas")  # uPlot drew the charts, with no network
        await snap(page, "sales-dashboard")

        await page.goto(base + "/app/deals/board")
        assert await column(page, "Qualified").locator(".deal-card").count() == 2
        await snap(page, "sales-board")

        # drag a card onto the Proposal column: the page reloads with the deal there
        card = page.locator(".deal-card[data-title='Initech printers']")
        async with page.expect_navigation():  # grabbed by its title: the move form inside starts no drag
            await card.drag_to(column(page, "Proposal"), source_position=GRAB)
        assert (
            await column(page, "Proposal").locator(".deal-card[data-title='Initech printers']").count() == 1
        )

        # the other with its card's own form
        other = page.locator(".deal-card[data-title='Initech TPS']")
        await other.locator("select[name=stage_id]").select_option(label="Meeting")
        async with page.expect_navigation():
            await other.locator("button:text-is('Move')").click()
        assert await column(page, "Meeting").locator(".deal-card[data-title='Initech TPS']").count() == 1

        # dropping on Lost asks why; no answer, no move
        await page.locator(".deal-card[data-title='Initech TPS']").drag_to(
            column(page, "Lost"), source_position=GRAB
        )
        assert dialogs == ["Why was this deal lost?"]
        await page.reload()
        assert await column(page, "Meeting").locator(".deal-card[data-title='Initech TPS']").count() == 1
        await snap(page, "sales-board-after-moves")

        history = await (await client.get("/api/v1/deals?q=printers", headers=sales)).json()
        deal = await (await client.get(f"/api/v1/deals/{history['items'][0]['id']}", headers=sales)).json()
        assert [(h["from_stage"], h["to_stage"]) for h in deal["history"]] == [(None, "Qualified"),
                                                                               ("Qualified", "Proposal")]  # fmt: skip

        # the task is done: it leaves the home page
        await page.goto(base + "/app")
        await page.locator("tr[data-task='Call Peter about the TPS reports'] button:text-is('Done')").click()
        await page.wait_for_url("**/app?notice=*")
        assert "Task done" in await page.inner_text("[role=status]")
        assert await page.locator("tr[data-task='Call Peter about the TPS reports']").count() == 0
        await snap(page, "sales-home-task-done")

        # the company page brings it together
        await page.goto(base + f"/app/companies/{company['id']}")
        assert "Peter" in await page.inner_text("main")
        await snap(page, "sales-company")

        # the deal's own page: its history with who moved it
        await page.click("a:text-is('Initech printers')")
        assert "Qualified → Proposal" in await page.inner_text("main")
        assert "Rita Rep" in await page.inner_text("main")
        await snap(page, "sales-deal")
