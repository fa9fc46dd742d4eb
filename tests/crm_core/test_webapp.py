"""The web app under /app: sign-in with email and password, finding persons, a person's page, stage moves, activities,
lead entry with the duplicate check; readable HTML, escaped data, no external assets, no cross-site posts."""

from __future__ import annotations

import re

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from crm_core.web import csrf_in, csrf_of, sign_in, user_with_password

pytestmark = pytest.mark.integration

H = dict[str, dict[str, str]]


async def test_pages_need_a_sign_in_and_a_wrong_password_is_refused(
    client: TestClient, auth_headers: H
) -> None:
    resp = await client.get("/app", allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"].startswith("/app/login?next=")
    email = await user_with_password(client, "sales")
    token = csrf_in(await (await client.get("/app/login")).text())
    bad = await client.post("/app/login", data={"email": email, "password": "not it at all", "_csrf": token})
    assert bad.status == 401
    assert "Wrong email or password." in await bad.text()
    api_token = auth_headers["sales"]["Authorization"].removeprefix("Bearer ")
    as_token = await client.post("/app/login", data={"email": email, "password": api_token, "_csrf": token})
    assert as_token.status == 401  # an API token is for programs; people sign in with their password


async def test_a_rep_enters_a_lead_finds_it_moves_it_and_logs_a_call(
    client: TestClient, auth_headers: H
) -> None:
    await sign_in(client, "sales")
    csrf = await csrf_of(client)
    form = {
        "_csrf": csrf,
        "email": "web@example.com",
        "first_name": "Wendy",
        "last_name": "<script>alert(1)</script>",
        "company": "Web Co",
    }
    created = await client.post("/app/leads", data=form, allow_redirects=False)
    assert created.status == 303
    person_url = created.headers["Location"]
    assert re.fullmatch(r"/app/persons/[0-9a-f-]{36}", person_url)

    dup = await client.post("/app/leads", data={"email": "WEB@example.com", "_csrf": csrf})
    assert dup.status == 409
    assert person_url in await dup.text()

    listing = await client.get("/app/people", params={"q": "web co"})
    text = await listing.text()
    assert listing.status == 200
    assert person_url in text
    assert "&lt;script&gt;" in text
    assert "<script>" not in text

    call = await client.post(
        f"{person_url}/activities",
        data={"kind": "phone_call", "outcome": "wants a demo", "_csrf": csrf},
        allow_redirects=False,
    )
    assert call.status == 303
    moved = await client.post(
        f"{person_url}/stage",
        data={"stage": "lost", "reason": "budget cut", "_csrf": csrf},
        allow_redirects=False,
    )
    assert moved.status == 303
    page = await (await client.get(person_url)).text()
    assert "wants a demo" in page
    assert "stage lead → prospect" in page  # the logged call made a prospect
    assert "stage prospect → lost" in page
    assert "budget cut" in page
    for src in re.findall(r'(?:src|href)="([^"]+)"', page):
        assert src.startswith(("/", "#")), f"{src} is not served by crm-core"
    assert "<script>" not in page  # no inline script: the CSP forbids it


async def test_a_read_only_user_sees_but_cannot_change(client: TestClient, auth_headers: H) -> None:
    lead = await client.post("/api/v1/leads", json={"email": "ro@example.com"}, headers=auth_headers["admin"])
    pid = (await lead.json())["id"]
    await sign_in(client, "read_only")
    page = await client.get(f"/app/persons/{pid}")
    assert page.status == 200
    assert "Move stage" not in await page.text()
    csrf = await csrf_of(client, f"/app/persons/{pid}")
    refused = await client.post(
        f"/app/persons/{pid}/stage", data={"stage": "lost", "reason": "x", "_csrf": csrf}
    )
    assert refused.status == 403
    assert (await client.get("/app/leads/new")).status == 403


async def test_bad_input_gets_a_readable_page(client: TestClient, auth_headers: H) -> None:
    await sign_in(client, "sales")
    missing = await client.get("/app/persons/01900000-0000-7000-8000-000000000000")
    assert missing.status == 404
    assert "No such person" in await missing.text()
    assert (await client.get("/app/persons/nope")).status == 404
    csrf = await csrf_of(client)
    no_contact = await client.post("/app/leads", data={"first_name": "Nobody", "_csrf": csrf})
    assert no_contact.status == 422
    assert "email or a phone" in await no_contact.text()
    bad_stage = await client.get("/app/people", params={"stage": "hot"})
    assert bad_stage.status == 422
    assert "unknown stage" in await bad_stage.text()


async def test_a_post_without_the_csrf_token_is_refused(client: TestClient, auth_headers: H) -> None:
    """A cross-site page cannot read the token, so its forged post is refused, with a readable page."""
    await sign_in(client, "sales")
    for data in ({"email": "x@example.com"}, {"email": "x@example.com", "_csrf": "forged"}):
        resp = await client.post("/app/leads", data=data, headers={"Origin": "https://evil.example"})
        assert resp.status == 403
        assert "reload and try again" in await resp.text()
    ok = await client.post("/app/leads", data={"email": "x@example.com", "_csrf": await csrf_of(client)})
    assert ok.status == 200 or ok.url.path.startswith("/app/persons/")


async def test_pages_carry_a_strict_content_security_policy(client: TestClient, auth_headers: H) -> None:
    await sign_in(client, "sales")
    resp = await client.get("/app/people")
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "'unsafe-inline'" not in csp
    assert resp.headers["X-Frame-Options"] == "DENY"
    static = await client.get("/app/static/app.js")
    assert static.status == 200


async def test_the_persons_page_lists_known_people_and_anonymous_visitors_only_when_ticked(
    client: TestClient, auth_headers: H, pg_dsn: str, schema: str
) -> None:
    """The web app's list follows the API: anonymous visitors no longer bury the leads."""
    lead = await client.post(
        "/api/v1/leads", json={"email": "seen@example.com"}, headers=auth_headers["admin"]
    )
    known = (await lead.json())["id"]
    conn = await asyncpg.connect(pg_dsn, server_settings={"search_path": schema})
    try:
        visitor = await conn.fetchval(
            "INSERT INTO persons (person_id, first_seen, last_seen)"
            " VALUES (gen_random_uuid(), now(), now()) RETURNING person_id::text"
        )
    finally:
        await conn.close()
    await sign_in(client, "read_only")
    default = await (await client.get("/app/people")).text()
    assert f"/app/persons/{known}" in default
    assert f"/app/persons/{visitor}" not in default
    everyone = await (await client.get("/app/people", params={"include_anonymous": "true"})).text()
    assert f"/app/persons/{visitor}" in everyone
    assert 'name="include_anonymous" value="true" checked' in everyone
    too_long = await client.get("/app/people", params={"q": "x" * 6000})
    assert too_long.status == 422
    assert "q: at most 200 characters" in await too_long.text()
