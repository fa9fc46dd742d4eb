"""The automation pages: a marketer builds a rule through the form in a real browser (headless Chromium) and sees it
listed; the pages hold no inline script (the CSP reports no error); a bad rule comes back as the form with a 422;
other roles get a 403 page; a notify action's notice shows on /app/notifications."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from collector.browser import launch_browser, new_page
from crm_core.web import PASSWORD, csrf_of, sign_in, snap, user_with_password
from leadline_crm.automation import actions
from leadline_crm.automation.events import DomainEvent
from leadline_shared.ids import new_id

pytestmark = pytest.mark.integration


async def test_a_marketer_creates_a_rule_through_the_form_and_sees_it_listed(client: TestClient) -> None:
    base = str(client.make_url("")).rstrip("/")
    email = await user_with_password(client, "marketing")
    async with launch_browser() as browser, new_page(browser) as page:
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        await page.goto(base + "/app/automation/new")
        await page.fill("input[name=email]", email)
        await page.fill("input[name=password]", PASSWORD)
        await page.click("form[action='/app/login'] button")
        await page.wait_for_url(base + "/app/automation/new")
        await page.fill("input[name=name]", "Hot lead <b>now</b>")
        await page.check("input[name=enabled]")
        await page.select_option("select[name=trigger_type]", "score.changed")
        await page.fill("input[name=trigger_value]", "50")
        await page.fill("input[name=c_field_0]", "country")
        await page.select_option("select[name=c_op_0]", "in")
        await page.fill("input[name=c_value_0]", "DE, AT")
        await page.select_option("select[name=a_type_0]", "create_task")
        await page.fill("input[name=a_text_0]", "Call the hot lead")
        await page.fill("input[name=a_number_0]", "4")
        await page.select_option("select[name=a_type_1]", "add_tag")
        await page.fill("input[name=a_text_1]", "hot")
        await snap(page, "automation-rule-form")
        await page.click("form.rule-form button")
        await page.wait_for_url(f"{base}/app/automation/*")
        assert "Rule saved" in await page.inner_text("[role=status]")
        main = await page.inner_text("main")
        assert "country in ['DE', 'AT']" in main
        assert "create_task (title=Call the hot lead, due_in_hours=4)" in main
        await page.goto(base + "/app/automation")
        listed = await page.inner_text("table.rules")
        assert "Hot lead <b>now</b>" in listed  # escaped, shown as typed
        assert "score.changed (threshold 50)" in listed
        assert "On — switch off" in listed
        await snap(page, "automation-rules")
    assert errors == []


async def test_a_bad_rule_comes_back_as_the_form_and_other_roles_are_refused(client: TestClient) -> None:
    await sign_in(client, "marketing")
    token = await csrf_of(client, "/app/automation/new")
    resp = await client.post(
        "/app/automation",
        data={"_csrf": token, "name": "No actions", "trigger_type": "deal.won", "c_field_0": "shoe_size",
              "c_op_0": "eq", "c_value_0": "9"},
    )  # fmt: skip
    assert resp.status == 422
    text = await resp.text()
    assert "No actions" in text  # the typed name kept
    assert "shoe_size" in text
    other = TestClient(client.server)
    try:
        await sign_in(other, "sales")
        assert (await other.get("/app/automation")).status == 403
    finally:
        await other.close()


async def test_a_notify_action_shows_on_the_users_notices(
    client: TestClient, pg_dsn: str, schema: str
) -> None:
    email = await sign_in(client, "sales")
    conn = await asyncpg.connect(pg_dsn, server_settings={"search_path": schema})
    try:
        user = await conn.fetchval("SELECT id FROM users WHERE email = $1", email)
        person = new_id()
        await conn.execute(
            "INSERT INTO persons (person_id, first_seen, last_seen) VALUES ($1, now(), now())", person
        )
        event = DomainEvent(0, "case.created", person, "SR-1", {}, "k", datetime.now(UTC))
        done = await actions.perform(conn, 1, "Complaints", [{"type": "notify", "user_id": str(user),
                                                                "text": "A complaint <needs> you"}], event)  # fmt: skip
        assert done == [f"notify (user_id={user}, text=A complaint <needs> you)"]
    finally:
        await conn.close()
    page = await (await client.get("/app/notifications")).text()
    assert "A complaint &lt;needs&gt; you" in page
    assert f'href="/app/persons/{person}"' in page


async def test_the_person_page_loads_the_persons_workflow_runs(
    client: TestClient, pg_dsn: str, schema: str
) -> None:
    await sign_in(client, "marketing")
    conn = await asyncpg.connect(pg_dsn, server_settings={"search_path": schema})
    try:
        person = new_id()
        await conn.execute(
            "INSERT INTO persons (person_id, first_seen, last_seen) VALUES ($1, now(), now())", person
        )
        rule = await conn.fetchval(
            "INSERT INTO workflow_rules (name, trigger_type, actions) VALUES ('Tag <hot>', 'deal.won', '[]')"
            " RETURNING id"
        )
        await conn.execute(
            "INSERT INTO rule_runs (rule_id, trigger_key, event_type, person_id, status, reason)"
            " VALUES ($1, 'k', 'deal.won', $2, 'stopped', 'would trigger itself')", rule, person,
        )  # fmt: skip
    finally:
        await conn.close()
    page = await (await client.get(f"/app/persons/{person}")).text()
    assert f'hx-get="/app/persons/{person}/workflow-runs"' in page
    assert 'href="/app/automation"' in page  # the nav, for a marketer
    part = await (await client.get(f"/app/persons/{person}/workflow-runs")).text()
    assert "Tag &lt;hot&gt;" in part
    assert "would trigger itself" in part
