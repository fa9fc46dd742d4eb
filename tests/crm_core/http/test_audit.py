"""The audit log (http/audit.py): every change through the REST API and the web app alike names who, what, when
and how, with the changed fields; secrets never reach it; admins read it at GET /api/v1/audit and
/app/admin/audit, filtered and paged."""

from __future__ import annotations

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from crm_core.web import PASSWORD, csrf_of, sign_in
from leadline_crm.http.keys import POOL

pytestmark = pytest.mark.integration

H = dict[str, dict[str, str]]


def pool(client: TestClient) -> asyncpg.Pool:
    return client.server.app[POOL]


async def entries(client: TestClient, admin: dict[str, str], **params: str) -> list[dict[str, object]]:
    resp = await client.get("/api/v1/audit", params=params, headers=admin)
    assert resp.status == 200, await resp.text()
    items: list[dict[str, object]] = (await resp.json())["items"]
    return items


async def test_api_changes_are_logged_with_who_what_and_the_changed_fields(
    client: TestClient, auth_headers: H
) -> None:
    sales, admin = auth_headers["sales"], auth_headers["admin"]
    lead = await client.post(
        "/api/v1/leads", json={"email": "ann@example.com", "first_name": "Ann"}, headers=sales
    )
    person = (await lead.json())["id"]
    await client.patch(
        f"/api/v1/persons/{person}",
        json={"company": "Acme", "stage": "lost", "reason": "budget"},
        headers=sales,
    )
    product = await client.post(
        "/api/v1/products",
        json={"sku": "P1", "name": "Plan", "list_price": 10.5, "currency": "EUR"},
        headers=admin,
    )
    assert product.status == 201, await product.text()
    bought = await client.post(
        "/api/v1/purchases",
        json={"person_id": person, "product_id": (await product.json())["id"], "quantity": 2},
        headers=sales,
    )
    assert bought.status == 201, await bought.text()
    await client.patch("/api/v1/scoring", json={"half_life_days": 10}, headers=admin)

    log = await entries(client, admin)
    assert [(e["entity_type"], e["action"]) for e in log] == [
        ("scoring", "update"),
        ("purchases", "create"),
        ("products", "create"),
        ("persons", "update"),
        ("persons", "create"),
    ]
    created, changed = log[4], log[3]
    assert created["actor"] == "token:t-sales"
    assert created["via"] == "api"
    assert created["entity_id"] == person
    assert created["changes"] == {"email": "ann@example.com", "first_name": "Ann", "source": "api"}
    assert changed["changes"] == {
        "company": [None, "Acme"],
        "stage": ["lead", "lost"],
        "reason": "budget",
    }
    assert log[1]["changes"]["price_paid"] == "21.00"  # type: ignore[index]
    assert log[0]["entity_id"] == "settings"
    assert log[0]["changes"]["half_life_days"][1] == 10  # type: ignore[index]


async def test_web_app_changes_are_logged_as_the_signed_in_user(client: TestClient, auth_headers: H) -> None:
    email = await sign_in(client, "sales")
    csrf = await csrf_of(client, "/app/people")
    made = await client.post(
        "/app/leads", data={"email": "web@example.com", "_csrf": csrf}, allow_redirects=False
    )
    assert made.status == 303
    [entry] = await entries(client, auth_headers["admin"], entity_type="persons")
    assert entry["via"] == "ui"
    assert entry["actor"] == "Rita Rep"
    assert entry["actor_email"] == email
    mine = await entries(client, auth_headers["admin"], actor="rep@example")
    assert [e["entity_type"] for e in mine] == ["persons"]


async def test_no_password_or_token_reaches_the_audit_log(client: TestClient, auth_headers: H) -> None:
    """The log is read by every admin and kept for long: a secret in it would outlive its rotation."""
    await sign_in(client, "admin")
    csrf = await csrf_of(client, "/app/admin")
    await client.post(
        "/app/admin/users", data={"_csrf": csrf, "name": "Neo", "email": "neo@example.com", "role": "sales"}
    )
    neo = await pool(client).fetchval("SELECT id FROM users WHERE email = 'neo@example.com'")
    page = await (await client.post(f"/app/admin/users/{neo}/password-link", data={"_csrf": csrf})).text()
    link = page.split("/app/password/")[1].split("<")[0].strip()
    made = await (
        await client.post("/app/admin/tokens", data={"_csrf": csrf, "name": "etl", "role": "read_only"})
    ).text()
    token = made.split("llt_")[1].split("<")[0]
    client.session.cookie_jar.clear()
    form = await client.get(f"/app/password/{link}")
    await client.post(
        f"/app/password/{link}",
        data={
            "_csrf": await csrf_of(client, f"/app/password/{link}"),
            "password": PASSWORD,
            "confirm": PASSWORD,
        },
    )
    assert form.status == 200
    dump = await pool(client).fetchval("SELECT string_agg(t::text, ' ') FROM audit_log t")
    for secret in (link, token, PASSWORD, "argon2"):
        assert secret not in dump
    actions = await pool(client).fetch("SELECT action, entity_type FROM audit_log ORDER BY id")
    assert [tuple(r) for r in actions] == [
        ("create", "users"),
        ("password_link", "users"),
        ("create", "api_tokens"),
        ("password_set", "users"),
    ]


async def test_the_log_is_filtered_by_entity_and_dates_and_paged(client: TestClient, auth_headers: H) -> None:
    admin = auth_headers["admin"]
    ids = []
    for i in range(5):
        resp = await client.post("/api/v1/leads", json={"email": f"p{i}@example.com"}, headers=admin)
        ids.append((await resp.json())["id"])
    first = await client.get("/api/v1/audit", params={"limit": "2"}, headers=admin)
    page1 = await first.json()
    assert [e["entity_id"] for e in page1["items"]] == [ids[4], ids[3]]
    page2 = await (
        await client.get("/api/v1/audit", params={"limit": "2", "cursor": page1["next"]}, headers=admin)
    ).json()
    assert [e["entity_id"] for e in page2["items"]] == [ids[2], ids[1]]
    assert [e["entity_id"] for e in await entries(client, admin, entity_id=ids[0])] == [ids[0]]
    assert await entries(client, admin, since="2999-01-01") == []
    assert len(await entries(client, admin, until="2999-01-01T00:00:00Z", entity_type="persons")) == 5
    assert (await client.get("/api/v1/audit", params={"since": "yesterday"}, headers=admin)).status == 422
    assert (await client.get("/api/v1/audit", headers=auth_headers["sales"])).status == 403


async def test_admins_read_the_log_in_the_web_app(client: TestClient, auth_headers: H) -> None:
    lead = await client.post(
        "/api/v1/leads",
        json={"email": "x@example.com", "last_name": "<b>bold</b>"},
        headers=auth_headers["admin"],
    )
    person = (await lead.json())["id"]
    await sign_in(client, "admin")
    page = await client.get("/app/admin/audit", params={"entity_type": "persons", "entity_id": person})
    text = await page.text()
    assert page.status == 200
    assert "token:t-admin" in text
    assert "&lt;b&gt;bold&lt;/b&gt;" in text  # escaped like every captured value
    assert "<b>bold</b>" not in text
    empty = await (await client.get("/app/admin/audit", params={"since": "2999-01-01"})).text()
    assert "Nothing recorded" in empty
    bad = await client.get("/app/admin/audit", params={"since": "soon"})
    assert bad.status == 422
