"""The workspace's notices and settings navigation: the nav of every /app page loads the signed-in user's unread
count as a badge (escaped, only theirs), the notices page marks one notice or all read, and the settings
navigation links the admin-only webhooks page for admins only."""

from __future__ import annotations

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from collector.browser import launch_browser, new_page
from crm_core.web import PASSWORD, csrf_of, sign_in, user_with_password

pytestmark = pytest.mark.integration


async def _notices(db: asyncpg.Connection, email: str, texts: list[str]) -> list[int]:
    user = await db.fetchval("SELECT id FROM users WHERE lower(email) = lower($1)", email)
    rows = await db.fetch(
        "INSERT INTO notifications (user_id, text) SELECT $1, t FROM unnest($2::text[]) AS t RETURNING id",
        user, texts,
    )  # fmt: skip
    return [r["id"] for r in rows]


async def test_the_badge_counts_only_my_unread_notices(client: TestClient, db: asyncpg.Connection) -> None:
    me = await sign_in(client, "sales")
    assert (await (await client.get("/app/notifications/unread")).text()).strip() == ""
    other = await user_with_password(client, "marketing")
    await _notices(db, me, ["one", "two", "three"])
    await _notices(db, other, ["not mine"])
    badge = await (await client.get("/app/notifications/unread")).text()
    assert '<span class="badge unread-count" title="Unread notices">3<' in badge
    await _notices(db, me, [f"n{i}" for i in range(120)])
    assert ">99+<" in await (await client.get("/app/notifications/unread")).text()
    page = await (await client.get("/app/people")).text()
    assert 'hx-get="/app/notifications/unread"' in page  # the nav of every page loads it
    signed_out = TestClient(client.server)
    try:
        resp = await signed_out.get("/app/notifications/unread", allow_redirects=False)
        assert (resp.status, await resp.text()) == (200, "")  # not the sign-in page inside the nav
    finally:
        await signed_out.close()


async def test_marking_one_notice_then_all_read(client: TestClient, db: asyncpg.Connection) -> None:
    me = await sign_in(client, "service")
    first, second, third = await _notices(db, me, ["a <b>", "b", "c"])
    theirs = (await _notices(db, await user_with_password(client, "marketing"), ["theirs"]))[0]
    page = await (await client.get("/app/notifications")).text()
    assert "a &lt;b&gt;" in page
    assert f'action="/app/notifications/{second}/read"' in page
    token = await csrf_of(client, "/app/notifications")
    resp = await client.post(
        f"/app/notifications/{second}/read", data={"_csrf": token}, allow_redirects=False
    )
    assert resp.status == 303
    read = {r["id"] for r in await db.fetch("SELECT id FROM notifications WHERE read_at IS NOT NULL")}
    assert second in read
    assert not {first, third} & read
    assert ">2<" in await (await client.get("/app/notifications/unread")).text()
    await client.post(f"/app/notifications/{theirs}/read", data={"_csrf": token})  # not mine: untouched
    assert await db.fetchval("SELECT read_at FROM notifications WHERE id = $1", theirs) is None
    assert (await client.post("/app/notifications/x1/read", data={"_csrf": token})).status == 404
    await client.post("/app/notifications/read", data={"_csrf": token})
    assert (await (await client.get("/app/notifications/unread")).text()).strip() == ""
    assert await db.fetchval("SELECT read_at FROM notifications WHERE id = $1", theirs) is None


async def test_the_browser_shows_the_badge_under_the_strict_csp(
    client: TestClient, db: asyncpg.Connection
) -> None:
    base = str(client.make_url("")).rstrip("/")
    email = await user_with_password(client, "sales")
    await db.execute("UPDATE notifications SET read_at = now() WHERE user_id = "
                     "(SELECT id FROM users WHERE lower(email) = lower($1))", email)  # fmt: skip
    await _notices(db, email, ["x", "y"])
    async with launch_browser() as browser, new_page(browser) as page:
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        await page.goto(base + "/app/people")
        await page.fill("input[name=email]", email)
        await page.fill("input[name=password]", PASSWORD)
        await page.click("form[action='/app/login'] button")
        await page.wait_for_url(base + "/app/people")
        badge = page.locator("nav[aria-label=Main] .unread-count")
        await badge.wait_for()
        assert (await badge.inner_text()).startswith("2")
    assert errors == []


async def test_the_settings_nav_links_webhooks_for_admins_only(client: TestClient) -> None:
    await sign_in(client, "admin")
    assert 'href="/app/settings/webhooks"' in await (await client.get("/app/settings")).text()
    other = TestClient(client.server)
    try:
        await sign_in(other, "marketing")
        page = await (await other.get("/app/settings")).text()
        assert "/app/settings/links" in page
        assert "/app/settings/webhooks" not in page
    finally:
        await other.close()
