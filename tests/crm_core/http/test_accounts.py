"""Signing in to the web app with email and password (http/pages.py, http/session.py, http/passwords.py): server-side
sessions that end on sign-out, idle and age; one message for every failed sign-in; the back-off after repeated
failures; CSRF tokens before and after sign-in; argon2id hashes made again when their parameters change."""

from __future__ import annotations

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from argon2 import PasswordHasher

from crm_core.web import PASSWORD, csrf_in, sign_in, user_with_password
from leadline_crm.http import passwords, session
from leadline_crm.http.keys import POOL

pytestmark = pytest.mark.integration

H = dict[str, dict[str, str]]


def pool(client: TestClient) -> asyncpg.Pool:
    return client.server.app[POOL]


async def attempt(client: TestClient, email: str, password: str, **headers: str) -> tuple[int, str]:
    """One sign-in through the form (with its pre-session CSRF token): the status and the page."""
    token = csrf_in(await (await client.get("/app/login")).text())
    resp = await client.post(
        "/app/login",
        data={"email": email, "password": password, "_csrf": token, "next": "/app/people"},
        allow_redirects=False,
        headers=headers,
    )
    return resp.status, await resp.text()


async def test_a_session_is_kept_on_the_server_and_only_its_hash_is_stored(client: TestClient) -> None:
    """A database dump must not open anyone's session, and sign-out must end it on the server too."""
    await sign_in(client, "sales")
    secret = client.session.cookie_jar.filter_cookies(client.make_url("/app"))[session.COOKIE].value
    rows = await pool(client).fetch("SELECT id_hash, csrf FROM sessions")
    assert [r["id_hash"] for r in rows] == [session.id_hash(secret)]
    page = await client.get("/app/people")
    assert page.status == 200
    assert "Rita Rep (sales)" in await page.text()
    csrf = csrf_in(await page.text())
    assert csrf == rows[0]["csrf"]  # the synchronizer token of this session

    out = await client.post("/app/logout", data={"_csrf": csrf}, allow_redirects=False)
    assert out.status == 303
    assert await pool(client).fetchval("SELECT count(*) FROM sessions") == 0
    client.session.cookie_jar.update_cookies({session.COOKIE: secret})  # a copy of the old cookie
    again = await client.get("/app/people", allow_redirects=False)
    assert again.status == 303
    assert again.headers["Location"].startswith("/app/login")


async def test_an_unknown_email_and_a_wrong_password_get_the_same_answer(client: TestClient) -> None:
    """The form must not tell an attacker which emails have accounts."""
    email = await user_with_password(client, "sales")
    wrong = await attempt(client, email, "not the password")
    unknown = await attempt(client, "nobody@example.com", PASSWORD)
    await pool(client).execute("UPDATE users SET active = false WHERE email = $1", email)
    inactive = await attempt(client, email, PASSWORD)
    for status, page in (wrong, unknown, inactive):
        assert status == 401
        assert "Wrong email or password." in page
    assert 'value="nobody@example.com"' in unknown[1]  # the email stays typed in


async def test_the_email_is_matched_whatever_its_case_and_the_sign_in_goes_on_to_next(
    client: TestClient,
) -> None:
    await user_with_password(client, "marketing", "Mia@Example.com")
    status, _ = await attempt(client, " MIA@example.COM ", PASSWORD)
    assert status == 303


async def test_repeated_failures_lock_the_account_even_for_the_right_password(client: TestClient) -> None:
    """Five wrong passwords within 15 minutes: the account waits (429, a clear message), and the right password
    does not get through until then; an unknown email locks the same way, so the lock reveals nothing."""
    email = await user_with_password(client, "sales")
    for _ in range(passwords.ACCOUNT_LIMIT - 1):
        assert (await attempt(client, email, "guess"))[0] == 401
    status, page = await attempt(client, email, "guess")
    assert status == 429
    assert "Too many failed sign-ins" in page
    assert "Try again in 1 minute" in page
    status, page = await attempt(client, email, PASSWORD)
    assert status == 429
    for _ in range(passwords.ACCOUNT_LIMIT):
        status, page = await attempt(client, "ghost@example.com", "guess")
    assert status == 429

    # the wait passes: the right password works and clears the count
    await pool(client).execute("UPDATE login_failures SET locked_until = now() - interval '1 second'")
    assert (await attempt(client, email, PASSWORD))[0] == 303
    assert (
        await pool(client).fetchval("SELECT count(*) FROM login_failures WHERE key = $1", f"account:{email}")
        == 0
    )
    # a further failure after a lock doubles the wait
    await pool(client).execute("UPDATE login_failures SET locked_until = NULL")
    status, page = await attempt(client, "ghost@example.com", "guess")
    assert status == 429
    assert "Try again in 2 minutes" in page


async def test_many_failures_from_one_address_make_it_wait_whatever_the_accounts(client: TestClient) -> None:
    """Password spraying (one guess per account) is held back per client address."""
    email = await user_with_password(client, "sales")
    for i in range(passwords.ADDRESS_LIMIT):
        status, _ = await attempt(client, f"user{i}@example.com", "Winter2026!")
    assert status == 429
    status, _ = await attempt(client, email, PASSWORD)
    assert status == 429


async def test_sessions_end_when_idle_too_long_when_too_old_and_when_the_user_is_deactivated(
    client: TestClient, auth_headers: H
) -> None:
    await sign_in(client, "sales")
    assert (await client.get("/app/people", allow_redirects=False)).status == 200
    await pool(client).execute("UPDATE sessions SET last_seen_at = now() - $1::interval", session.IDLE)
    assert (await client.get("/app/people", allow_redirects=False)).status == 303

    await sign_in(client, "sales")
    await pool(client).execute("UPDATE sessions SET expires_at = now()")
    assert (await client.get("/app/people", allow_redirects=False)).status == 303

    await sign_in(client, "sales")
    assert (await client.get("/api/v1/persons", headers=auth_headers["sales"])).status == 200
    await pool(client).execute("UPDATE users SET active = false WHERE email = 'rep@example.com'")
    assert (await client.get("/app/people", allow_redirects=False)).status == 303
    assert (await client.get("/api/v1/persons", headers=auth_headers["sales"])).status == 401


async def test_a_request_refreshes_the_idle_clock(client: TestClient) -> None:
    await sign_in(client, "sales")
    await pool(client).execute("UPDATE sessions SET last_seen_at = now() - interval '2 hours'")
    assert (await client.get("/app/people")).status == 200
    age = await pool(client).fetchval("SELECT now() - last_seen_at FROM sessions")
    assert age.total_seconds() < 60


async def test_every_sign_in_makes_a_new_session_id(client: TestClient) -> None:
    """A session id planted before sign-in (session fixation) is never the one that gets signed in."""
    await sign_in(client, "sales")
    first = await pool(client).fetchval("SELECT id_hash FROM sessions")
    await sign_in(client, "sales")
    ids = [r["id_hash"] for r in await pool(client).fetch("SELECT id_hash FROM sessions")]
    assert len(ids) == 2
    assert first in ids


async def test_the_sign_in_form_needs_its_pre_session_csrf_token(client: TestClient) -> None:
    email = await user_with_password(client, "sales")
    await client.get("/app/login")
    for token in ({}, {"_csrf": "forged"}):
        resp = await client.post("/app/login", data={"email": email, "password": PASSWORD, **token})
        assert resp.status == 403
        assert "reload and try again" in await resp.text()


async def test_a_hash_made_with_older_parameters_is_made_again_at_sign_in(client: TestClient) -> None:
    email = await user_with_password(client, "sales")
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    await pool(client).execute("UPDATE users SET password_hash = $2 WHERE email = $1", email, weak)
    assert (await attempt(client, email, PASSWORD))[0] == 303
    stored = await pool(client).fetchval("SELECT password_hash FROM users WHERE email = $1", email)
    assert stored != weak
    assert stored.startswith("$argon2id$")
    assert not passwords.HASHER.check_needs_rehash(stored)


async def test_a_sign_in_forgets_failure_counts_older_than_the_window(client: TestClient) -> None:
    email = await user_with_password(client, "sales")
    await attempt(client, "old@example.com", "guess")
    await pool(client).execute("UPDATE login_failures SET last_at = now() - $1::interval", passwords.WINDOW)
    await attempt(client, "recent@example.com", "guess")
    assert (await attempt(client, email, PASSWORD))[0] == 303
    keys = {r["key"] for r in await pool(client).fetch("SELECT key FROM login_failures")}
    assert keys == {"account:recent@example.com", "ip:127.0.0.1"}


async def test_a_user_changes_their_own_password_and_other_sessions_end(client: TestClient) -> None:
    """The first admin's generated password is meant to be replaced; a session left open elsewhere ends."""
    email = await sign_in(client, "sales")
    elsewhere = await pool(client).fetchval("SELECT id_hash FROM sessions")
    await sign_in(client, "sales")
    page = await client.get("/app/account")
    assert email in await page.text()
    csrf = csrf_in(await page.text())

    def form(current: str, new: str, confirm: str | None = None) -> dict[str, str]:
        return {"_csrf": csrf, "current": current, "password": new, "confirm": confirm or new}

    wrong = await client.post("/app/account/password", data=form("not it", "a brand new passphrase"))
    assert wrong.status == 403
    assert "The current password is wrong." in await wrong.text()
    short = await client.post("/app/account/password", data=form(PASSWORD, "short"))
    assert short.status == 422
    done = await client.post(
        "/app/account/password", data=form(PASSWORD, "a brand new passphrase"), allow_redirects=False
    )
    assert (done.status, done.headers["Location"]) == (303, "/app/account?done=1")
    assert "Your password is changed." in await (await client.get("/app/account?done=1")).text()  # still in
    hashes = [r["id_hash"] for r in await pool(client).fetch("SELECT id_hash FROM sessions")]
    assert len(hashes) == 1
    assert elsewhere not in hashes
    assert (await attempt(client, email, PASSWORD))[0] == 401
    assert (await attempt(client, email, "a brand new passphrase"))[0] == 303
    [entry] = await pool(client).fetch("SELECT action, via, actor FROM audit_log")
    assert tuple(entry) == ("password_set", "ui", "Rita Rep")


async def test_guessing_the_current_password_from_an_open_session_is_held_back(client: TestClient) -> None:
    await sign_in(client, "sales")
    csrf = csrf_in(await (await client.get("/app/account")).text())
    for _ in range(passwords.ACCOUNT_LIMIT):
        resp = await client.post(
            "/app/account/password",
            data={"_csrf": csrf, "current": "guess", "password": "x" * 20, "confirm": "x" * 20},
        )
    assert resp.status == 429
    assert "Too many failed sign-ins" in await resp.text()
