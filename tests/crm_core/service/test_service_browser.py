"""An agent's case work in a real browser (headless Chromium, Debian's chromium through Playwright): open the
queue, filter it, open a case, add a comment, move its status; the case page holds no inline script and passes
the CSP without errors. Screenshots are kept as test artefacts (tests/crm_core/web.py's snap)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from collector.browser import launch_browser, new_page
from crm_core.service.helpers import api, case, person
from crm_core.web import PASSWORD, snap, user_with_password

pytestmark = pytest.mark.integration

H = dict[str, dict[str, str]]


async def test_an_agent_works_a_case_in_the_browser(client: TestClient, auth_headers: H) -> None:
    base = str(client.make_url("")).rstrip("/")
    pid = await person(
        client, auth_headers["sales"], "browser@example.com", first_name="Bea", last_name="Brown"
    )
    await api(client, "POST", "/api/v1/kb/articles", auth_headers["service"], 201,
              json={"title": "Boiler pressure drops", "body": "Top up the **pressure** to 1.5 bar."})  # fmt: skip
    number = (await case(client, auth_headers["sales"], pid, subject="Boiler pressure keeps dropping",
                         description="Pressure drops overnight.", type="fault"))["tracking_number"]  # fmt: skip
    await case(client, auth_headers["sales"], pid, subject="Question about invoice", type="question")
    email = await user_with_password(client, "service")
    async with launch_browser() as browser, new_page(browser) as page:
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        await page.goto(base + "/app/cases")
        await page.fill("input[name=email]", email)
        await page.fill("input[name=password]", PASSWORD)
        await page.click("form[action='/app/login'] button")
        await page.wait_for_url(base + "/app/cases")
        assert number in await page.inner_text("table.queue")
        await page.select_option("select[name=type]", "fault")
        await page.click("form[role=search] button")
        rows = await page.locator("table.queue tbody tr").count()
        assert rows == 1
        await snap(page, "service-queue")

        await page.click(f"a[href='/app/cases/{number}']")
        await page.wait_for_url(base + f"/app/cases/{number}")
        assert "Bea Brown" in await page.inner_text("main")
        assert "Boiler pressure drops" in await page.inner_text("main")  # a suggested article

        await page.fill("#comments textarea[name=body]", "Asked the customer to read the gauge.")
        await page.check("#comments input[name=public]")
        await page.click("#comments button")
        assert "Comment added" in await page.inner_text("[role=status]")
        assert "Asked the customer to read the gauge." in await page.inner_text("#comments")

        await page.click("button[data-move=open]")
        assert "Moved to open" in await page.inner_text("[role=status]")
        await page.click("button[data-move=waiting]")
        assert "waiting" in await page.inner_text("h1")
        history = await page.inner_text("main")
        assert "new → open" in history
        assert "open → waiting" in history
        await snap(page, "service-case")
        assert not [e for e in errors if "Content Security Policy" in e], errors
