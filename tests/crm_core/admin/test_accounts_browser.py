"""Accounts in a real browser (headless Chromium through Playwright): signing in, a wrong password, the lockout, a
post without its CSRF token refused with a readable page, an admin creating a user and a password-set link, the
user setting a password and signing in, an API token created and revoked, and the audit log showing each change.
Screenshots are kept as test artefacts (tests/crm_core/web.py's snap)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Dialog, Page

from collector.browser import launch_browser, new_page
from crm_core.web import PASSWORD, snap, user_with_password
from leadline_crm.http import passwords

pytestmark = pytest.mark.integration


async def sign_in(page: Page, base: str, email: str, password: str, then: str = "/app/admin") -> None:
    await page.goto(base + then)
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", password)
    await page.click("form[action='/app/login'] button")


async def accept(dialog: Dialog) -> None:
    await dialog.accept()


async def test_accounts_end_to_end_in_a_browser(client: TestClient) -> None:
    base = str(client.make_url("")).rstrip("/")
    admin_email = await user_with_password(client, "admin")
    async with launch_browser() as browser, new_page(browser) as admin:
        # a wrong password is refused, with the one message for every failure
        await sign_in(admin, base, admin_email, "not my password")
        assert "Wrong email or password." in await admin.inner_text("[role=alert]")
        assert await admin.input_value("input[name=email]") == admin_email
        await snap(admin, "accounts-wrong-password")

        await sign_in(admin, base, admin_email, PASSWORD)
        await admin.wait_for_url(base + "/app/admin")
        assert "Admin User (admin)" in await admin.inner_text("header")

        # a post without the CSRF token (a forged form) is refused with a readable page
        await admin.eval_on_selector("form[action='/app/admin/users'] input[name=_csrf]", "e => e.remove()")
        await admin.fill("form[action='/app/admin/users'] input[name=name]", "Mallory")
        await admin.fill("form[action='/app/admin/users'] input[name=email]", "mallory@example.com")
        await admin.click("form[action='/app/admin/users'] button")
        assert "reload and try again" in await admin.inner_text("main")
        await snap(admin, "accounts-csrf-refused")

        # the admin creates a user and a one-time password link
        await admin.goto(base + "/app/admin")
        assert "mallory@example.com" not in await admin.inner_text("main")
        await admin.fill("form[action='/app/admin/users'] input[name=name]", "Sue Service")
        await admin.fill("form[action='/app/admin/users'] input[name=email]", "sue@example.com")
        await admin.select_option("form[action='/app/admin/users'] select[name=role]", "service")
        await admin.click("form[action='/app/admin/users'] button")
        assert "User created" in await admin.inner_text("[role=status]")
        row = admin.locator("tr[data-user='sue@example.com']")
        assert "no password yet" in await row.inner_text()
        await row.locator("text=Password link").click()
        link = (await admin.inner_text("#password-link")).strip()
        assert link.startswith(base + "/app/password/")
        await snap(admin, "accounts-password-link")

        async with new_page(browser) as sue:
            # the user sets a password through the link, then signs in
            await sue.goto(link)
            assert "Sue Service" in await sue.inner_text("main")
            await sue.fill("input[name=password]", "sue's long passphrase")
            await sue.fill("input[name=confirm]", "sue's long passphrase")
            await sue.click("main form button")
            await sue.wait_for_url("**/app/login?set=1")
            assert "Your password is set" in await sue.inner_text("[role=status]")
            await sign_in(sue, base, "sue@example.com", "sue's long passphrase", then="/app/people")
            await sue.wait_for_url(base + "/app/people")
            assert "Sue Service (service)" in await sue.inner_text("header")
            await sue.goto(link)
            assert "Link not valid" in await sue.inner_text("main")  # single use

        async with new_page(browser) as attacker:
            # repeated failures lock the account, even for its right password
            for _ in range(passwords.ACCOUNT_LIMIT):
                await sign_in(attacker, base, "sue@example.com", "guess", then="/app/login")
            assert "Too many failed sign-ins" in await attacker.inner_text("[role=alert]")
            await sign_in(attacker, base, "sue@example.com", "sue's long passphrase", then="/app/login")
            assert "Too many failed sign-ins" in await attacker.inner_text("[role=alert]")
            await snap(attacker, "accounts-locked")

        # an API token is created (shown once) and revoked
        admin.on("dialog", accept)
        await admin.goto(base + "/app/admin/tokens")
        await admin.fill("form[action='/app/admin/tokens'] input[name=name]", "etl job")
        await admin.select_option("form[action='/app/admin/tokens'] select[name=role]", "read_only")
        await admin.click("form[action='/app/admin/tokens'] button")
        token = (await admin.inner_text("#new-token")).strip()
        assert token.startswith("llt_")
        headers = {"Authorization": f"Bearer {token}"}
        assert (await client.get("/api/v1/persons", headers=headers)).status == 200
        await snap(admin, "accounts-token-created")
        await admin.locator("tr[data-token='etl job'] button").click()
        assert "Token revoked" in await admin.inner_text("[role=status]")
        assert "revoked" in await admin.inner_text("tr[data-token='etl job']")
        assert (await client.get("/api/v1/persons", headers=headers)).status == 401

        # the audit log shows each change, newest first
        await admin.goto(base + "/app/admin/audit")
        rows = [await r.inner_text() for r in await admin.query_selector_all("table.audit tbody tr")]
        actions = [r.split("\t")[3] for r in rows]
        assert actions == ["revoke", "create", "password_set", "password_link", "create"]
        assert "sue@example.com" in rows[4]
        assert "Sue Service" in rows[2]
        assert token not in "".join(rows)
        await admin.select_option("select[name=entity_type]", "api_tokens")
        await admin.click("form.filters button")
        assert len(await admin.query_selector_all("table.audit tbody tr")) == 2
        await snap(admin, "accounts-audit-log")
