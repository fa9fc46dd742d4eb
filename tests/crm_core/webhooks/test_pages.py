"""The webhook settings pages: an admin creates a subscription in a real browser (headless Chromium), sees its
secret once, sends a test ping and sees it in the delivery log; other roles get the 403 page; a refused URL is a
readable 422 page that keeps what was typed."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient

from collector.browser import launch_browser, new_page
from crm_core.web import PASSWORD, csrf_of, sign_in, snap, user_with_password
from crm_core.webhooks.helpers import SEALER, Receiver
from leadline_crm.http.keys import POOL

pytestmark = pytest.mark.integration


async def test_an_admin_creates_a_subscription_and_sees_its_delivery_log(
    client: TestClient, receiver: Receiver
) -> None:
    base = str(client.make_url("")).rstrip("/")
    email = await user_with_password(client, "admin")
    async with launch_browser() as browser, new_page(browser) as page:
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        await page.goto(base + "/app/settings/webhooks")
        await page.fill("input[name=email]", email)
        await page.fill("input[name=password]", PASSWORD)
        await page.click("form[action='/app/login'] button")
        await page.wait_for_url(base + "/app/settings/webhooks")
        await page.click("a[href='/app/settings/webhooks/new']")
        await page.fill("input[name=url]", receiver.url)
        await page.fill("input[name=description]", "Local <receiver>")
        await page.check("input[name=event_types][value='person.created']")
        await page.check("input[name=event_types][value='deal.won']")
        await page.fill("input[name=allowed_network]", "127.0.0.0/8")
        await page.click("form[action='/app/settings/webhooks'] button")
        assert "Subscription created" in await page.inner_text("[role=status]")
        secret = (await page.inner_text("#new-secret")).strip()
        assert secret.startswith("whsec_")
        receiver.secrets = [secret]
        assert "Local <receiver>" in await page.inner_text("main")  # escaped, shown as typed
        await snap(page, "webhooks-created")

        await page.click("form[action$='/test'] button")
        assert "ping delivery was queued" in await page.inner_text("[role=status]")
        for _ in range(100):
            if await page.locator("#delivery-log tr[data-status=delivered]").count():
                break
            await asyncio.sleep(0.1)
            await page.reload()
        row = page.locator("#delivery-log tr[data-status=delivered]")
        assert await row.count() == 1
        text = await row.inner_text()
        assert "ping" in text
        assert "200" in text
        assert " ms" in text
        assert secret not in await page.content()  # shown once, not on the subscription page afterwards
        await snap(page, "webhooks-log")
        assert not [e for e in errors if "Content Security Policy" in e], errors
    assert len(receiver.received) == 1
    assert receiver.bad == []


async def test_other_roles_get_403_and_a_refused_url_is_a_readable_422(client: TestClient) -> None:
    await sign_in(client, "marketing")
    assert (await client.get("/app/settings/webhooks")).status == 403
    await sign_in(client, "admin")
    token = await csrf_of(client, "/app/settings/webhooks/new")
    resp = await client.post(
        "/app/settings/webhooks",
        data={"url": "http://169.254.169.254/latest/", "event_types": "deal.won", "_csrf": token},
    )
    assert resp.status == 422
    page = await resp.text()
    assert "metadata" in page
    assert 'value="http://169.254.169.254/latest/"' in page
    resp = await client.post(
        "/app/settings/webhooks",
        data={"url": "https://hooks.example.com/a\x00b", "event_types": "deal.won", "_csrf": token},
    )
    assert resp.status == 422
    assert "control characters" in await resp.text()


async def test_a_disabled_subscription_shows_why_and_enabling_it_clears_the_streak(
    client: TestClient,
) -> None:
    """The notice of a subscription the dispatcher disabled stays on its page until an admin enables it."""
    pool = client.server.app[POOL]
    sid = await pool.fetchval(
        "INSERT INTO webhook_subscriptions (url, event_types, enabled, secret, created_by, disabled_at,"
        " disabled_reason, failing_since, consecutive_failures) VALUES ('https://hooks.example.com/x',"
        " ARRAY['deal.won'], false, $1, 'test', now(), 'every delivery failed for 25 hours',"
        " now() - interval '25 hours', 40) RETURNING id",
        SEALER.seal("whsec_AAAA"),
    )
    await sign_in(client, "admin")
    page = await (await client.get(f"/app/settings/webhooks/{sid}")).text()
    assert "every delivery failed for 25 hours" in page
    assert "whsec_AAAA" not in page
    listing = await (await client.get("/app/settings/webhooks")).text()
    assert "every delivery failed for 25 hours" in listing
    token = await csrf_of(client, f"/app/settings/webhooks/{sid}")
    resp = await client.post(
        f"/app/settings/webhooks/{sid}/enabled",
        data={"enabled": "true", "_csrf": token},
        allow_redirects=False,
    )
    assert resp.status == 303
    row = await pool.fetchrow("SELECT * FROM webhook_subscriptions WHERE id = $1", sid)
    assert row["enabled"] is True
    assert row["disabled_reason"] is None
    assert row["consecutive_failures"] == 0
    assert row["failing_since"] is None
