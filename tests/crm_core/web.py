"""Helpers for tests of the web app under /app: signing in with email and password through the real form, the
CSRF token a page's forms carry, and screenshots kept as artefacts."""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path

from aiohttp.test_utils import TestClient
from playwright.async_api import Page

from leadline_crm.http import auth, passwords, queries
from leadline_crm.http.keys import POOL


def csrf_in(html: str) -> str:
    """The CSRF token a page's forms carry."""
    found = re.search(r'name="_csrf" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


async def csrf_of(client: TestClient, path: str = "/app/leads/new") -> str:
    return csrf_in(await (await client.get(path)).text())


PASSWORD = "correct horse battery staple"  # the test users' password


@cache
def password_hash() -> str:
    """One argon2id hash of :data:`PASSWORD` for every test user (hashing is deliberately slow)."""
    return passwords.HASHER.hash(PASSWORD)


def email_of(role: str) -> str:
    """The test user of a role: the sales one is the rep the ``auth_headers`` sales token belongs to."""
    return "rep@example.com" if role == "sales" else f"{role}@example.com"


async def user_with_password(client: TestClient, role: str, email: str | None = None) -> str:
    """Make (or update) the user ``email`` with ``role`` and :data:`PASSWORD`; returns the email."""
    email = email or email_of(role)
    await client.server.app[POOL].execute(
        "INSERT INTO users (email, name, role, password_hash) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT ((lower(email))) DO UPDATE SET role = $3, password_hash = $4, active = true",
        email,
        "Rita Rep" if role == "sales" else f"{role.replace('_', ' ').title()} User",
        role,
        password_hash(),
    )
    return email


async def _role_of(client: TestClient, headers: dict[str, str]) -> str:
    token = headers["Authorization"].removeprefix("Bearer ")
    row = await client.server.app[POOL].fetchrow(queries.TOKEN_CALLER, auth.token_hash(token))
    assert row is not None, "unknown API token"
    role: str = row["role"]
    return role


async def sign_in(client: TestClient, who: str | dict[str, str], email: str | None = None) -> str:
    """Sign in through the real form as a user of the role ``who`` (or of the role of the API token in the
    ``auth_headers`` entry ``who``), created with :data:`PASSWORD` as needed; the session's cookie stays in
    ``client``. Returns the user's email."""
    role = who if isinstance(who, str) else await _role_of(client, who)
    email = await user_with_password(client, role, email)
    token = csrf_in(await (await client.get("/app/login")).text())
    resp = await client.post(
        "/app/login",
        data={"email": email, "password": PASSWORD, "next": "/app", "_csrf": token},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    assert resp.headers["Location"] == "/app"
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    return email


ARTIFACTS = Path(os.environ.get("LEADLINE_ARTIFACTS", ".run/artifacts")) / "screenshots"


async def snap(page: Page, name: str) -> Path:
    """Keep a full-page screenshot as a test artefact (.run/artifacts/screenshots, or $LEADLINE_ARTIFACTS)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
