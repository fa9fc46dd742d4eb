"""Privacy in the product (issue 14): an admin exports everything crm-core holds on a person as one JSON document."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from crm_core.web import csrf_of, sign_in

pytestmark = pytest.mark.integration

H = dict[str, dict[str, str]]


async def seed(conn: asyncpg.Connection, person: str) -> None:
    """One record of every kind about ``person``."""
    pid = uuid.UUID(person)
    await conn.execute(
        "INSERT INTO touchpoints (event_id, person_id, type, source, occurred_at, received_at, event)"
        " VALUES ('ev-export-1', $1, 'page_view', 'web', now(), now(), $2)",
        pid,
        '{"event_id": "ev-export-1", "type": "page_view", "context": {"url": "https://shop.example/x"}}',
    )
    await conn.execute(
        "INSERT INTO activities (person_id, kind, notes) VALUES ($1, 'note', 'likes tea')", pid
    )
    product = await conn.fetchval(
        "INSERT INTO products (sku, name, list_price) VALUES ('TEA-1', 'Tea', 5) RETURNING id"
    )
    await conn.execute(
        "INSERT INTO purchases (person_id, product_id, quantity, price_paid) VALUES ($1, $2, 2, 9.5)",
        pid,
        product,
    )
    await conn.execute("INSERT INTO feedback (person_id, rating, text) VALUES ($1, 4, 'good tea')", pid)
    await conn.execute(
        "INSERT INTO service_contracts (person_id, name, starts_on, ends_on)"
        " VALUES ($1, 'Gold care', current_date, current_date + 30)",
        pid,
    )
    case = await conn.fetchval(
        "INSERT INTO cases (tracking_number, person_id, type, subject, description)"
        " VALUES ('SR-2026-000001', $1, 'question', 'Kettle noise', 'it whistles') RETURNING id",
        pid,
    )
    await conn.execute(
        "INSERT INTO case_comments (case_id, author, body) VALUES ($1, 'agent', 'try descaling')", case
    )
    pipeline, stage = await conn.fetchrow(
        "SELECT pipeline_id, id FROM pipeline_stages ORDER BY position LIMIT 1"
    )
    deal = await conn.fetchval(
        "INSERT INTO deals (title, pipeline_id, stage_id, person_id) VALUES ('Tea for the office', $1, $2, $3)"
        " RETURNING id",
        pipeline,
        stage,
        pid,
    )
    await conn.execute(
        "INSERT INTO tasks (title, due_at, person_id, deal_id) VALUES ('Call about tea', now(), $1, $2)",
        pid,
        deal,
    )
    await conn.execute(
        "INSERT INTO person_merges (old_id, person_id, change_id) VALUES ($1, $2, 'ch-export')",
        uuid.UUID("00000000-0000-4000-8000-00000000e0e0"),
        pid,
    )


async def test_an_admin_exports_every_kind_of_record_about_a_person(
    client: TestClient, auth_headers: H, pg_dsn: str, schema: str
) -> None:
    admin = auth_headers["admin"]
    resp = await client.post(
        "/api/v1/leads",
        json={"email": "tess.tea@example.com", "phone": "+442079460959", "first_name": "Tess"},
        headers=admin,
    )
    assert resp.status == 201, await resp.text()
    person = (await resp.json())["id"]
    patched = await client.patch(f"/api/v1/persons/{person}", json={"company": "Tea Co"}, headers=admin)
    assert patched.status == 200, await patched.text()
    conn = await asyncpg.connect(pg_dsn, server_settings={"search_path": schema})
    try:
        await seed(conn, person)
    finally:
        await conn.close()

    resp = await client.get(f"/api/v1/persons/{person}/export", headers=admin)
    assert resp.status == 200, await resp.text()
    assert "attachment" in resp.headers["Content-Disposition"]
    doc: dict[str, Any] = await resp.json()
    assert doc["person_id"] == person
    assert (doc["profile"]["first_name"], doc["profile"]["company"]) == ("Tess", "Tea Co")
    assert doc["identifiers"]["emails"] == ["tess.tea@example.com"]
    assert doc["identifiers"]["phones"] == ["+442079460959"]
    assert doc["touchpoints"][0]["event"]["context"]["url"] == "https://shop.example/x"
    assert doc["activities"][0]["notes"] == "likes tea"
    assert doc["purchases"][0]["quantity"] == 2
    assert doc["feedback"][0]["text"] == "good tea"
    assert doc["stage_history"][0]["to_stage"] == "lead"
    assert doc["cases"][0]["subject"] == "Kettle noise"
    assert doc["cases"][0]["comments"][0]["body"] == "try descaling"
    assert doc["contracts"][0]["name"] == "Gold care"
    assert doc["deals"][0]["title"] == "Tea for the office"
    assert doc["tasks"][0]["title"] == "Call about tea"
    assert doc["merged_ids"][0]["old_id"] == "00000000-0000-4000-8000-00000000e0e0"
    assert {a["action"] for a in doc["audit"]} >= {"create", "update"}

    merged = await client.get("/api/v1/persons/00000000-0000-4000-8000-00000000e0e0/export", headers=admin)
    assert merged.status == 404
    assert (await merged.json())["merged_into"] == person
    unknown = await client.get(f"/api/v1/persons/{uuid.uuid4()}/export", headers=admin)
    assert unknown.status == 404

    again = await client.get(f"/api/v1/persons/{person}/export", headers=admin)
    assert any(a["action"] == "export" for a in (await again.json())["audit"]), "the export is audited"

    for role in ("sales", "marketing", "service", "read_only"):
        denied = await client.get(f"/api/v1/persons/{person}/export", headers=auth_headers[role])
        assert denied.status == 403, role


async def test_the_person_page_offers_admins_an_export_link(client: TestClient, auth_headers: H) -> None:
    resp = await client.post(
        "/api/v1/leads", json={"email": "page.export@example.com"}, headers=auth_headers["admin"]
    )
    person = (await resp.json())["id"]
    await sign_in(client, "sales")
    page = await (await client.get(f"/app/persons/{person}")).text()
    assert f"/app/persons/{person}/export" not in page
    assert (await client.get(f"/app/persons/{person}/export")).status == 403

    await client.post("/app/logout", data={"_csrf": await csrf_of(client, "/app")}, allow_redirects=False)
    await sign_in(client, "admin")
    page = await (await client.get(f"/app/persons/{person}")).text()
    assert f'href="/app/persons/{person}/export"' in page
    download = await client.get(f"/app/persons/{person}/export")
    assert download.status == 200
    assert "attachment" in download.headers["Content-Disposition"]
    assert (await download.json())["identifiers"]["emails"] == ["page.export@example.com"]


NEEDLES = [
    "tess.tea@example.com",
    "442079460959",
    "Tess",
    "Tea Co",
    "likes tea",
    "good tea",
    "Kettle noise",
    "it whistles",
    "try descaling",
    "Tea for the office",
    "Call about tea",
    "shop.example/x",
]


async def rows_holding(conn: asyncpg.Connection, schema: str, needles: list[str]) -> list[str]:
    """Every table of ``schema`` with a row (as text) holding one of ``needles`` (as tests/e2e/test_erase.py)."""
    hits = []
    for t in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1", schema):
        name = f'"{schema}"."{t["tablename"]}"'
        for needle in needles:
            query = f"SELECT count(*) FROM {name} r WHERE r::text ILIKE $1"  # noqa: S608 (from pg_tables)
            if await conn.fetchval(query, f"%{needle}%"):
                hits.append(f"{name} holds {needle!r}")
    return hits


async def test_an_admin_erases_a_person_and_crm_core_keeps_no_personal_data(
    client: TestClient, auth_headers: H, pg_dsn: str, schema: str
) -> None:
    """Erase via the API: every table is scanned for the person's data; an erasure record without it; 409 after."""
    admin = auth_headers["admin"]
    resp = await client.post(
        "/api/v1/leads",
        json={
            "email": "tess.tea@example.com",
            "phone": "+442079460959",
            "first_name": "Tess",
            "company": "Tea Co",
        },
        headers=admin,
    )
    person = (await resp.json())["id"]
    conn = await asyncpg.connect(pg_dsn, server_settings={"search_path": schema})
    try:
        await seed(conn, person)
        for role in ("sales", "marketing", "service", "read_only"):
            denied = await client.post(
                f"/api/v1/persons/{person}/erase", json={"reference": "DSR-1"}, headers=auth_headers[role]
            )
            assert denied.status == 403, role
        bad = await client.post(f"/api/v1/persons/{person}/erase", json={}, headers=admin)
        assert bad.status == 422

        resp = await client.post(
            f"/api/v1/persons/{person}/erase", json={"reference": "DSR-2026-17"}, headers=admin
        )
        assert resp.status == 202, await resp.text()
        doc = await resp.json()
        assert (doc["status"], doc["person_id"]) == ("accepted", person)
        assert "retention" in doc["retention"]
        assert "days" in doc["retention"]

        for _ in range(100):  # the relay sends what the outbox holds (the lead's capture event has the email)
            if await conn.fetchval("SELECT count(*) FROM outbox") == 0:
                break
            await asyncio.sleep(0.1)
        assert await rows_holding(conn, schema, NEEDLES) == []

        record = await conn.fetchrow("SELECT * FROM erasures WHERE person_id = $1", person)
        assert (record["reference"], record["via"]) == ("DSR-2026-17", "api")
        assert record["requested_by"].startswith("token:")
        assert not any(n.lower() in str(dict(record)).lower() for n in NEEDLES)
        person_row = await conn.fetchrow("SELECT erased_at, stage FROM persons WHERE person_id = $1", person)
        assert person_row["erased_at"] is not None
        assert await conn.fetchval("SELECT count(*) FROM purchases WHERE person_id = $1", person) == 1, (
            "anonymous facts stay"
        )
    finally:
        await conn.close()

    again = await client.post(
        f"/api/v1/persons/{person}/erase", json={"reference": "DSR-2026-18"}, headers=admin
    )
    assert again.status == 409
    unknown = await client.post(
        f"/api/v1/persons/{uuid.uuid4()}/erase", json={"reference": "x"}, headers=admin
    )
    assert unknown.status == 404


async def test_the_erase_button_posts_with_csrf_and_a_confirmation(
    client: TestClient, auth_headers: H
) -> None:
    resp = await client.post(
        "/api/v1/leads", json={"email": "page.erase@example.com"}, headers=auth_headers["admin"]
    )
    person = (await resp.json())["id"]
    await sign_in(client, "sales")
    assert "/erase" not in await (await client.get(f"/app/persons/{person}")).text()
    denied = await client.post(
        f"/app/persons/{person}/erase",
        data={
            "reference": "DSR-3",
            "confirm": "yes",
            "_csrf": await csrf_of(client, f"/app/persons/{person}"),
        },
        allow_redirects=False,
    )
    assert denied.status == 403

    await sign_in(client, "admin")
    page = await (await client.get(f"/app/persons/{person}")).text()
    form = page[page.index(f'action="/app/persons/{person}/erase"') :]
    form = form[: form.index("</form>")]
    assert "data-confirm=" in form
    assert 'name="_csrf"' in form
    assert 'name="confirm"' in form
    no_csrf = await client.post(
        f"/app/persons/{person}/erase", data={"reference": "DSR-3", "confirm": "yes"}, allow_redirects=False
    )
    assert no_csrf.status == 403
    unticked = await client.post(
        f"/app/persons/{person}/erase",
        data={"reference": "DSR-3", "_csrf": await csrf_of(client, f"/app/persons/{person}")},
        allow_redirects=False,
    )
    assert unticked.status == 422
    done = await client.post(
        f"/app/persons/{person}/erase",
        data={
            "reference": "DSR-3",
            "confirm": "yes",
            "_csrf": await csrf_of(client, f"/app/persons/{person}"),
        },
        allow_redirects=False,
    )
    assert done.status == 303, await done.text()
    page = await (await client.get(f"/app/persons/{person}")).text()
    assert "page.erase@example.com" not in page
    assert "personal data was erased" in page
    assert f'action="/app/persons/{person}/erase"' not in page
