"""The admin area /app/admin (admin/pages.py, admin/accounts.py, http/accounts.py): users with roles, deactivation
that ends sessions, one-time password-set links, and API tokens created and revoked in the web app."""

from __future__ import annotations

import re

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from crm_core.web import csrf_in, csrf_of, sign_in
from leadline_crm.http.keys import POOL

pytestmark = pytest.mark.integration

H = dict[str, dict[str, str]]


def pool(client: TestClient) -> asyncpg.Pool:
    return client.server.app[POOL]


async def post(client: TestClient, path: str, **data: str) -> tuple[int, str, str]:
    """A form post from the admin area with the page's CSRF token: status, page, Location."""
    csrf = await csrf_of(client, "/app/admin")
    resp = await client.post(path, data={"_csrf": csrf, **data}, allow_redirects=False)
    return resp.status, await resp.text(), resp.headers.get("Location", "")


async def user_id(client: TestClient, email: str) -> str:
    return str(await pool(client).fetchval("SELECT id FROM users WHERE email = $1", email))


async def password_link(client: TestClient, email: str) -> str:
    status, page, _ = await post(client, f"/app/admin/users/{await user_id(client, email)}/password-link")
    assert status == 200
    found = re.search(r"https?://[^/]+(/app/password/[A-Za-z0-9_-]+)", page)
    assert found, page
    return found.group(1)


async def test_only_admins_reach_the_admin_area(client: TestClient) -> None:
    await sign_in(client, "sales")
    assert (await client.get("/app/admin")).status == 403
    assert (await client.get("/app/admin/tokens")).status == 403
    assert (await client.get("/app/admin/audit")).status == 403
    status, _, _ = await post(client, "/app/admin/users", name="X", email="x@example.com", role="admin")
    assert status == 403
    assert await pool(client).fetchval("SELECT count(*) FROM users WHERE email = 'x@example.com'") == 0


async def test_an_admin_creates_a_user_who_sets_a_password_once_and_signs_in(client: TestClient) -> None:
    await sign_in(client, "admin")
    status, _, where = await post(
        client, "/app/admin/users", name="Sue Service", email="Sue@Example.com", role="service"
    )
    assert (status, where) == (303, "/app/admin?done=created")
    page = await (await client.get(where)).text()
    assert "sue@example.com" in page  # stored in canonical form, as sign-in looks it up
    assert "no password yet" in page
    dup = await post(client, "/app/admin/users", name="Sue", email="sue@example.com", role="sales")
    assert dup[0] == 409
    assert "a user with this email exists" in dup[1]
    bad = await post(client, "/app/admin/users", name="Bad", email="not an email", role="sales")
    assert bad[0] == 422

    link = await password_link(client, "sue@example.com")
    stored = await pool(client).fetchval("SELECT token_hash FROM password_links")
    assert link.rsplit("/", 1)[1].encode() not in stored  # only a hash is kept

    client.session.cookie_jar.clear()  # Sue, in her own browser
    form = await client.get(link)
    assert form.status == 200
    assert form.headers["Referrer-Policy"] == "no-referrer"  # the token stays out of Referer headers
    assert "Sue Service" in await form.text()
    csrf = csrf_in(await form.text())
    short = await client.post(link, data={"_csrf": csrf, "password": "short", "confirm": "short"})
    assert short.status == 422
    assert "at least 12 characters" in await short.text()
    differ = await client.post(
        link, data={"_csrf": csrf, "password": "a long enough one", "confirm": "another long one"}
    )
    assert "differ" in await differ.text()
    done = await client.post(
        link,
        data={"_csrf": csrf, "password": "sue's own passphrase", "confirm": "sue's own passphrase"},
        allow_redirects=False,
    )
    assert (done.status, done.headers["Location"]) == (303, "/app/login?set=1")
    assert (await client.get(link)).status == 404  # single use
    assert "Link not valid" in await (await client.get(link)).text()

    login = await client.get("/app/login?set=1")
    assert "Your password is set" in await login.text()
    signed = await client.post(
        "/app/login",
        data={
            "_csrf": csrf_in(await login.text()),
            "email": "sue@example.com",
            "password": "sue's own passphrase",
        },
        allow_redirects=False,
    )
    assert signed.status == 303
    assert "Sue Service (service)" in await (await client.get("/app/people")).text()


async def test_a_password_link_expires_and_a_newer_one_replaces_it(client: TestClient) -> None:
    await sign_in(client, "admin")
    await post(client, "/app/admin/users", name="Ed", email="ed@example.com", role="sales")
    first = await password_link(client, "ed@example.com")
    second = await password_link(client, "ed@example.com")
    assert (await client.get(first)).status == 404
    assert (await client.get(second)).status == 200
    await pool(client).execute("UPDATE password_links SET expires_at = now()")
    assert (await client.get(second)).status == 404
    assert (await client.get("/app/password/made-up")).status == 404


async def test_role_changes_apply_at_once_and_deactivation_ends_sessions_and_tokens(
    client: TestClient, auth_headers: H
) -> None:
    await sign_in(client, "admin")
    rep = await user_id(client, "rep@example.com")
    # Rita, signed in elsewhere with a session of her own
    await sign_in(client, "sales")
    rita_cookie = client.session.cookie_jar.filter_cookies(client.make_url("/app"))["ll_crm"].value
    await sign_in(client, "admin")

    status, _, _ = await post(client, f"/app/admin/users/{rep}/role", role="read_only")
    assert status == 303
    assert await pool(client).fetchval("SELECT role FROM users WHERE id = $1::uuid", rep) == "read_only"
    bogus = await post(client, f"/app/admin/users/{rep}/role", role="root")
    assert bogus[0] == 422

    status, _, where = await post(client, f"/app/admin/users/{rep}/active", active="false")
    assert (status, where) == (303, "/app/admin?done=deactivated")
    assert await pool(client).fetchval("SELECT count(*) FROM sessions WHERE user_id = $1::uuid", rep) == 0
    assert (await client.get("/api/v1/persons", headers=auth_headers["sales"])).status == 401  # her token
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({"ll_crm": rita_cookie})
    assert (await client.get("/app/people", allow_redirects=False)).status == 303


async def test_the_last_active_admin_cannot_be_demoted_or_deactivated(client: TestClient) -> None:
    await sign_in(client, "admin")
    me = await user_id(client, "admin@example.com")
    for path, data in (("role", {"role": "sales"}), ("active", {"active": "false"})):
        status, page, _ = await post(client, f"/app/admin/users/{me}/{path}", **data)
        assert status == 409
        assert "last active admin" in page


async def test_an_api_token_is_shown_once_works_and_stops_when_revoked(
    client: TestClient, auth_headers: H
) -> None:
    await sign_in(client, "admin")
    rep = await user_id(client, "rep@example.com")
    status, page, _ = await post(client, "/app/admin/tokens", name="zapier", role="sales", user_id=rep)
    assert status == 200
    token = re.search(r"llt_[A-Za-z0-9_-]+", page)
    assert token, page
    headers = {"Authorization": f"Bearer {token.group(0)}"}
    assert (await client.get("/api/v1/persons", headers=headers)).status == 200
    listing = await (await client.get("/app/admin/tokens")).text()
    assert "zapier" in listing
    assert token.group(0) not in listing  # never shown again
    token_id = await pool(client).fetchval("SELECT id FROM api_tokens WHERE name = 'zapier'")

    status, _, where = await post(client, f"/app/admin/tokens/{token_id}/revoke")
    assert (status, where) == (303, "/app/admin/tokens?done=revoked")
    assert (await client.get("/api/v1/persons", headers=headers)).status == 401
    again = await post(client, f"/app/admin/tokens/{token_id}/revoke")
    assert again[0] == 404
    nameless = await post(client, "/app/admin/tokens", name=" ", role="sales")
    assert nameless[0] == 422


async def test_a_user_made_through_the_api_gets_a_canonical_email_and_deactivating_ends_sessions(
    client: TestClient, auth_headers: H
) -> None:
    admin = auth_headers["admin"]
    made = await client.post(
        "/api/v1/users", json={"email": "Kim@Example.COM", "name": "Kim", "role": "marketing"}, headers=admin
    )
    assert made.status == 201
    assert (await made.json())["email"] == "kim@example.com"
    await sign_in(client, "marketing", "kim@example.com")
    kim = (await made.json())["id"]
    off = await client.patch(f"/api/v1/users/{kim}", json={"active": False}, headers=admin)
    assert off.status == 200
    assert (await client.get("/app/people", allow_redirects=False)).status == 303
