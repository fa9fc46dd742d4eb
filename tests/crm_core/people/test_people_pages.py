"""The people pages of the web workspace against the real PostgreSQL: the home page per role, the person list
(filters, sorting, pages, CSV export, saved filters) and the person page (facts, owner and next step, custom
fields, activities, purchases, feedback, score reasons, the timeline's details)."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import asyncpg
import orjson
import pytest
from aiohttp.test_utils import TestClient

from crm_core.web import csrf_of, sign_in

pytestmark = pytest.mark.integration

H = dict[str, dict[str, str]]


@pytest.fixture
async def db(pg_dsn: str, schema: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(pg_dsn, server_settings={"search_path": schema})
    try:
        yield conn
    finally:
        await conn.close()


async def lead(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    resp = await client.post("/api/v1/leads", json=body, headers=headers)
    assert resp.status == 201, await resp.text()
    doc: dict[str, Any] = await resp.json()
    return doc


async def post_form(client: TestClient, path: str, data: dict[str, str], csrf_path: str) -> Any:
    return await client.post(
        path, data={**data, "_csrf": await csrf_of(client, csrf_path)}, allow_redirects=False
    )


async def rep_id(db: asyncpg.Connection) -> uuid.UUID:
    rid: uuid.UUID = await db.fetchval("SELECT id FROM users WHERE email = 'rep@example.com'")
    return rid


async def add_touchpoint(
    db: asyncpg.Connection, person: str, kind: str, event: dict[str, Any], **cols: Any
) -> None:
    eid = str(uuid.uuid4())
    await db.execute(
        "INSERT INTO touchpoints (event_id, person_id, type, source, occurred_at, received_at, url, event, automated)"
        " VALUES ($1, $2, $3, 'test', now(), now(), $4, $5, $6)",
        eid, uuid.UUID(person), kind, cols.get("url"), orjson.dumps({"event_id": eid, "type": kind, **event}).decode(),
        cols.get("automated", False),
    )  # fmt: skip


async def test_home_shows_a_reps_leads_with_next_steps_overdue_first_and_recent_forms(
    client: TestClient, auth_headers: H, db: asyncpg.Connection
) -> None:
    sales = auth_headers["sales"]
    due = await lead(client, sales, email="due@example.com", first_name="Dora", next_step="send the quote",
                     next_step_on=(date.today() - timedelta(days=2)).isoformat())  # fmt: skip
    later = await lead(client, sales, email="later@example.com", first_name="Lars", next_step="demo call",
                       next_step_on=(date.today() + timedelta(days=5)).isoformat())  # fmt: skip
    assert due["owner_id"] == str(await rep_id(db)), "a rep's own lead is theirs"
    other = await lead(client, auth_headers["admin"], email="nobody@example.com", first_name="Ned")
    assert other["owner_id"] is None
    await add_touchpoint(
        db, later["id"], "form_submit", {"form": {"key": "quote", "fields": {"name": "Lars"}}}
    )
    await sign_in(client, sales)
    page = await (await client.get("/app")).text()
    mine = page.split('id="mine"')[1].split("</section>")[0]
    assert mine.index("Dora") < mine.index("Lars"), "overdue next steps come first"
    assert "send the quote" in mine
    assert "Ned" not in mine
    overdue = page.split('id="overdue"')[1].split("</section>")[0]
    assert "Dora" in overdue
    assert "Lars" not in overdue
    forms = page.split('id="forms"')[1].split("</section>")[0]
    assert "quote" in forms
    assert f"/app/persons/{later['id']}" in forms


async def test_the_list_filters_sorts_pages_and_exports_what_it_shows(
    client: TestClient, auth_headers: H, db: asyncpg.Connection
) -> None:
    admin = auth_headers["admin"]
    rid = str(await rep_id(db))
    for i in range(55):
        await lead(client, admin, email=f"p{i:02d}@example.com", first_name=f"P{i:02d}", country="DE" if i % 2 else "FR",
                   **({"owner_id": rid} if i < 5 else {}))  # fmt: skip
    evil = await lead(
        client, admin, email="evil@example.com", first_name='=HYPERLINK("http://x")', country="DE"
    )
    await sign_in(client, auth_headers["read_only"])
    first = await (await client.get("/app/people", params={"sort": "name", "dir": "asc"})).text()
    names = re.findall(r">(P\d\d)</a>", first)
    assert names[:3] == ["P00", "P01", "P02"]
    assert 'rel="next"' in first
    second = await (
        await client.get("/app/people", params={"sort": "name", "dir": "asc", "page": "2"})
    ).text()
    assert re.findall(r">(P\d\d)</a>", second)[0] not in names
    german = await (await client.get("/app/people", params={"country": "de"})).text()
    assert "P01" in german
    assert "P00" not in german
    owned = await (await client.get("/app/people", params={"owner": rid})).text()
    assert sorted(re.findall(r">(P\d\d)</a>", owned)) == ["P00", "P01", "P02", "P03", "P04"]
    bad = await client.get("/app/people", params={"sort": "drop table"})
    assert bad.status == 422
    assert "sort: one of" in await bad.text()

    export = await client.get("/app/people.csv", params={"country": "DE"})
    assert export.status == 200
    assert export.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(await export.text())))
    assert len(rows) == 28  # 27 odd P's and the evil one: every page, not just the first
    by_email = {r["emails"]: r for r in rows}
    assert by_email["evil@example.com"]["first_name"].startswith("'="), "no formula runs in a spreadsheet"
    assert evil["id"] in {r["id"] for r in rows}


async def test_saved_filters_are_kept_per_user_and_deleted(client: TestClient, auth_headers: H) -> None:
    await sign_in(client, auth_headers["sales"])
    saved = await post_form(client, "/app/people/filters", {"name": "German leads", "query": "country=DE&stage=lead"},
                            "/app/people")  # fmt: skip
    assert saved.status == 303
    page = await (await client.get("/app/people")).text()
    assert "German leads" in page
    assert "/app/people?country=DE&amp;stage=lead" in page
    refused = await post_form(
        client, "/app/people/filters", {"name": "x", "query": "sort=evil"}, "/app/people"
    )
    assert refused.status == 422
    fid = re.search(r"/app/people/filters/([0-9a-f-]{36})/delete", page)
    assert fid
    gone = await post_form(client, f"/app/people/filters/{fid.group(1)}/delete", {}, "/app/people")
    assert gone.status == 303
    assert "German leads" not in await (await client.get("/app/people")).text()


async def test_a_rep_edits_facts_owner_and_next_step_and_bad_input_keeps_what_was_typed(
    client: TestClient, auth_headers: H, db: asyncpg.Connection
) -> None:
    person = await lead(client, auth_headers["admin"], email="facts@example.com")
    url = f"/app/persons/{person['id']}"
    await sign_in(client, auth_headers["sales"])
    rid = str(await rep_id(db))
    form = {"first_name": "Fay", "company": "Facts Ltd", "emails": "facts@example.com\nfay@facts.example",
            "phones": "", "owner_id": rid, "next_step": "call back", "next_step_on": "2030-01-02"}  # fmt: skip
    saved = await post_form(client, url, form, url)
    assert saved.status == 303
    row = await db.fetchrow("SELECT * FROM persons WHERE person_id = $1", uuid.UUID(person["id"]))
    assert (row["first_name"], row["company"], str(row["owner_id"]), row["next_step"], row["next_step_on"]) == (
        "Fay", "Facts Ltd", rid, "call back", date(2030, 1, 2))  # fmt: skip
    assert row["emails"] == ["facts@example.com", "fay@facts.example"]
    bad = await post_form(client, url, {**form, "company": "Typed Co", "next_step_on": "someday"}, url)
    assert bad.status == 422
    text = await bad.text()
    assert "next_step_on" in text
    assert 'value="Typed Co"' in text, "what was typed stays in the form"


async def test_custom_fields_never_block_lead_entry_and_are_edited_with_typed_inputs(
    client: TestClient, auth_headers: H, db: asyncpg.Connection
) -> None:
    admin = auth_headers["admin"]
    for body in (
        {"name": "budget", "label": "Budget", "type": "number", "required": True},
        {"name": "plan", "label": "Plan", "type": "choice", "choices": ["basic", "pro"]},
        {"name": "vip", "label": "VIP", "type": "boolean"},
    ):
        resp = await client.post("/api/v1/field_definitions", json=body, headers=admin)
        assert resp.status == 201, await resp.text()
    await sign_in(client, auth_headers["sales"])
    created = await post_form(client, "/app/leads", {"email": "cf@example.com"}, "/app/leads/new")
    assert created.status == 303, "a required custom field never blocks entering a lead"
    url = created.headers["Location"]
    page = await (await client.get(url)).text()
    assert "Required custom fields still empty: Budget" in page
    assert 'name="f_budget" type="number"' in page
    assert '<select name="f_plan">' in page
    bad = await post_form(client, f"{url}/fields", {"f_budget": "lots"}, url)
    assert bad.status == 422
    assert "not a number" in await bad.text()
    ok = await post_form(client, f"{url}/fields", {"f_budget": "1500", "f_plan": "pro", "f_vip": "1"}, url)
    assert ok.status == 303
    attrs = await db.fetchval(
        "SELECT attributes FROM persons WHERE person_id = $1", uuid.UUID(url.rsplit("/", 1)[1])
    )
    assert orjson.loads(attrs) == {"budget": 1500, "plan": "pro", "vip": True}


async def test_purchases_feedback_and_calls_entered_on_the_page_show_with_their_details(
    client: TestClient, auth_headers: H, db: asyncpg.Connection
) -> None:
    admin = auth_headers["admin"]
    product = await client.post("/api/v1/products", json={"sku": "SOL-1", "name": "Solar kit", "list_price": 4200},
                                headers=admin)  # fmt: skip
    assert product.status == 201, await product.text()
    pid_product = (await product.json())["id"]
    person = await lead(client, admin, email="buyer@example.com", first_name="Bea")
    url = f"/app/persons/{person['id']}"
    await add_touchpoint(db, person["id"], "form_submit",
                         {"form": {"key": "quote", "fields": {"roof": "<b>south</b>"}}}, url="https://x.example/q")  # fmt: skip
    await add_touchpoint(db, person["id"], "link_click", {"bot": {"is_bot": True, "indicators": ["scanner"]}},
                         automated=True)  # fmt: skip
    await sign_in(client, auth_headers["sales"])
    call = await post_form(client, f"{url}/activities", {"kind": "phone_call", "outcome": "wants a quote",
                                                          "next_step": "send quote", "next_step_on": "2030-03-04"}, url)  # fmt: skip
    assert call.status == 303
    bought = await post_form(client, f"{url}/purchases", {"product_id": pid_product, "quantity": "2",
                                                           "special_instructions": "deliver after 5pm"}, url)  # fmt: skip
    assert bought.status == 303
    rated = await post_form(client, f"{url}/feedback", {"rating": "4", "text": "quick install"}, url)
    assert rated.status == 303
    refused = await post_form(client, f"{url}/feedback", {"rating": "9"}, url)
    assert refused.status == 422
    page = await (await client.get(url)).text()
    assert ">customer</span>" in page, "a purchase makes a customer"
    assert "8,400.00 EUR" in page, "the price paid defaults to list price times quantity"
    assert "deliver after 5pm" in page
    assert "Rita Rep" in page
    assert "★★★★☆" in page
    assert "quick install" in page
    assert "wants a quote" in page
    assert "send quote" in page
    assert "&lt;b&gt;south&lt;/b&gt;" in page, "captured form fields are shown escaped"
    assert "automated: scanner" in page
    assert "prospect → customer" in page
    assert "form submit" in page
    reasons = page.split('id="score-h"')[1].split("</section>")[0]
    assert "form submit" in reasons, "the score says which rule gave its points"
    assert "email click" not in reasons, "a scanner's click never scores"


async def test_a_merged_persons_old_page_leads_to_the_survivor(
    client: TestClient, auth_headers: H, db: asyncpg.Connection
) -> None:
    survivor = await lead(client, auth_headers["admin"], email="keep@example.com")
    old = uuid.uuid4()
    await db.execute("INSERT INTO person_merges (old_id, person_id, change_id) VALUES ($1, $2, 'c1')",
                     old, uuid.UUID(survivor["id"]))  # fmt: skip
    await sign_in(client, auth_headers["read_only"])
    resp = await client.get(f"/app/persons/{old}", allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"] == f"/app/persons/{survivor['id']}"
