"""Helpers for tests of the web app under /app: signing in through the real form, and the CSRF token a page's
forms carry."""

from __future__ import annotations

import os
import re
from pathlib import Path

from aiohttp.test_utils import TestClient
from playwright.async_api import Page


def token_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def csrf_in(html: str) -> str:
    """The CSRF token a page's forms carry."""
    found = re.search(r'name="_csrf" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


async def csrf_of(client: TestClient, path: str = "/app/leads/new") -> str:
    return csrf_in(await (await client.get(path)).text())


async def sign_in(client: TestClient, headers: dict[str, str]) -> None:
    token = csrf_in(await (await client.get("/app/login")).text())
    resp = await client.post(
        "/app/login",
        data={"token": token_of(headers), "next": "/app", "_csrf": token},
        allow_redirects=False,
    )
    assert resp.status == 303
    assert resp.headers["Location"] == "/app"
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie


ARTIFACTS = Path(os.environ.get("LEADLINE_ARTIFACTS", ".run/artifacts")) / "screenshots"


async def snap(page: Page, name: str) -> Path:
    """Keep a full-page screenshot as a test artefact (.run/artifacts/screenshots, or $LEADLINE_ARTIFACTS)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
