"""Static lists (issue 16): the API's CRUD and members with problem+json refusals, the pages (create, rename,
delete, remove a member, add from the person page, CSV download with formula-safe cells), and a list a workflow
rule names cannot be deleted while the rule's add_to_list action keeps filling it."""

from __future__ import annotations

import csv
import io

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from collector.browser import launch_browser, new_page
from crm_core.automation.conftest import until
from crm_core.web import PASSWORD, csrf_of, sign_in, user_with_password
from leadline_shared.ids import new_id

pytestmark = pytest.mark.integration
H = dict[str, dict[str, str]]


async def _person(db: asyncpg.Connection, first: str = "Ann", email: str = "ann@corp.example") -> str:
    person = new_id()
    await db.execute(
        "INSERT INTO persons (person_id, first_seen, last_seen, first_name, emails, stage)"
        " VALUES ($1, now(), now(), $2, ARRAY[$3], 'lead')", person, first, email,
    )  # fmt: skip
    return person


async def test_the_api_creates_renames_fills_and_deletes_a_list(
    client: TestClient, auth_headers: H, db: asyncpg.Connection
) -> None:
    mk = auth_headers["marketing"]
    resp = await client.post("/api/v1/lists", json={"name": "Webinar <2026>"}, headers=mk)
    assert resp.status == 201
    lst = await resp.json()
    assert (lst["name"], lst["members"]) == ("Webinar <2026>", 0)
    dup = await client.post("/api/v1/lists", json={"name": "Webinar <2026>"}, headers=mk)
    assert dup.status == 409
    assert dup.content_type == "application/problem+json"
    bad = await client.post("/api/v1/lists", json={"name": ""}, headers=mk)
    assert bad.status == 422
    assert (
        await client.post("/api/v1/lists", json={"name": "x"}, headers=auth_headers["sales"])
    ).status == 403

    person = await _person(db)
    url = f"/api/v1/lists/{lst['id']}"
    added = await client.post(url + "/members", json={"person_id": person}, headers=mk)
    assert added.status == 201
    again = await client.post(url + "/members", json={"person_id": person}, headers=mk)
    assert (again.status, (await again.json())["added"]) == (200, False)
    nobody = await client.post(url + "/members", json={"person_id": new_id()}, headers=mk)
    assert nobody.status == 404
    members = await (await client.get(url + "/members", headers=auth_headers["sales"])).json()
    assert [(m["person_id"], m["first_name"], m["email"]) for m in members["items"]] == [
        (person, "Ann", "ann@corp.example")
    ]
    renamed = await client.patch(url, json={"name": "Webinar 2026"}, headers=mk)
    assert (renamed.status, (await renamed.json())["members"]) == (200, 1)
    assert (await client.get("/api/v1/lists/999999", headers=mk)).status == 404
    assert (await client.delete(f"{url}/members/{person}", headers=mk)).status == 204
    assert (await client.delete(f"{url}/members/{person}", headers=mk)).status == 404
    assert (await client.delete(url, headers=mk)).status == 204
    assert (await client.get(url, headers=mk)).status == 404
    audited = await db.fetch(
        "SELECT action FROM audit_log WHERE entity_type = 'lists' AND entity_id = $1 ORDER BY id",
        str(lst["id"]),
    )
    assert [a["action"] for a in audited] == ["create", "add_member", "update", "remove_member", "delete"]


async def test_the_members_come_a_page_at_a_time(
    client: TestClient, auth_headers: H, db: asyncpg.Connection
) -> None:
    lid = await db.fetchval("INSERT INTO lists (name) VALUES ('Paged') RETURNING id")
    people = [await _person(db, f"P{i}", f"p{i}@corp.example") for i in range(5)]
    await db.execute(
        "INSERT INTO list_members (list_id, person_id, added_at)"
        " SELECT $1, p, '2026-01-01'::timestamptz FROM unnest($2::uuid[]) AS p", lid, people,
    )  # fmt: skip
    seen: list[str] = []
    url = f"/api/v1/lists/{lid}/members?limit=2"
    while url:
        page = await (await client.get(url, headers=auth_headers["sales"])).json()
        assert len(page["items"]) <= 2
        seen += [m["person_id"] for m in page["items"]]
        url = f"/api/v1/lists/{lid}/members?limit=2&cursor={page['next']}" if page["next"] else ""
    assert sorted(seen) == sorted(people)
    assert len(seen) == 5
    bad = await client.get(f"/api/v1/lists/{lid}/members?cursor=nonsense", headers=auth_headers["sales"])
    assert bad.status == 422


async def test_a_list_a_rule_fills_cannot_be_deleted_and_the_rule_keeps_filling_it(
    client: TestClient, auth_headers: H, db: asyncpg.Connection
) -> None:
    mk = auth_headers["marketing"]
    lst = await (await client.post("/api/v1/lists", json={"name": "Hot"}, headers=mk)).json()
    rule = await client.post(
        "/api/v1/workflow-rules", headers=mk,
        json={"name": "Hot deals", "enabled": True, "trigger_type": "person.created",
              "actions": [{"type": "add_to_list", "list_id": lst["id"]}]},
    )  # fmt: skip
    assert rule.status == 201
    refused = await client.delete(f"/api/v1/lists/{lst['id']}", headers=mk)
    assert refused.status == 409
    assert "Hot deals" in (await refused.json())["detail"]
    lead = await client.post(
        "/api/v1/leads", json={"email": "hot@corp.example"}, headers=auth_headers["admin"]
    )
    assert lead.status == 201
    person = (await lead.json())["id"]
    await until(
        lambda: db.fetchval(
            "SELECT count(*) FROM list_members WHERE list_id = $1 AND person_id = $2", lst["id"], person
        ),
        "the rule's add_to_list",
    )
    members = await (await client.get(f"/api/v1/lists/{lst['id']}/members", headers=mk)).json()
    assert [m["person_id"] for m in members["items"]] == [person]


async def test_the_pages_manage_a_list_and_download_it_as_csv(
    client: TestClient, db: asyncpg.Connection
) -> None:
    await sign_in(client, "marketing")
    token = await csrf_of(client, "/app/lists")
    resp = await client.post(
        "/app/lists", data={"_csrf": token, "name": "Fair <b>leads</b>"}, allow_redirects=False
    )
    assert resp.status == 303
    lid = int(resp.headers["Location"].split("/")[3].split("?")[0])
    index = await (await client.get("/app/lists")).text()
    assert "Fair &lt;b&gt;leads&lt;/b&gt;" in index
    taken = await client.post("/app/lists", data={"_csrf": token, "name": "Fair <b>leads</b>"})
    assert taken.status == 409
    assert "already exists" in await taken.text()

    evil = await _person(db, "=HYPERLINK(1)", "evil@corp.example")
    fine = await _person(db, "Bo", "bo@corp.example")
    part = await (await client.get(f"/app/persons/{evil}/lists")).text()
    assert f'<option value="{lid}">Fair &lt;b&gt;leads&lt;/b&gt;</option>' in part
    for person in (evil, fine):
        added = await client.post(
            f"/app/persons/{person}/lists", data={"_csrf": token, "list_id": str(lid)}, allow_redirects=False
        )
        assert added.status == 303
    bad = await client.post(f"/app/persons/{fine}/lists", data={"_csrf": token, "list_id": "nope"})
    assert bad.status == 422
    part = await (await client.get(f"/app/persons/{fine}/lists")).text()
    assert f'<a href="/app/lists/{lid}">' in part

    page = await (await client.get(f"/app/lists/{lid}")).text()
    assert "bo@corp.example" in page
    assert "2 members" in page
    download = await client.get(f"/app/lists/{lid}/members.csv")
    assert download.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(await download.text())))
    assert rows[0] == ["person_id", "first_name", "last_name", "email", "stage", "added_at"]
    assert sorted(r[1] for r in rows[1:]) == ["'=HYPERLINK(1)", "Bo"]

    await client.post(f"/app/lists/{lid}/members/{fine}/remove", data={"_csrf": token})
    await client.post(f"/app/lists/{lid}", data={"_csrf": token, "name": "Fair 2026"})
    page = await (await client.get(f"/app/lists/{lid}")).text()
    assert "bo@corp.example" not in page
    assert 'value="Fair 2026"' in page
    gone = await client.post(f"/app/lists/{lid}/delete", data={"_csrf": token}, allow_redirects=False)
    assert gone.status == 303
    assert (await client.get(f"/app/lists/{lid}")).status == 404


async def test_a_sales_rep_reads_lists_but_may_not_change_them(
    client: TestClient, db: asyncpg.Connection
) -> None:
    lid = await db.fetchval("INSERT INTO lists (name) VALUES ('Read only') RETURNING id")
    await sign_in(client, "sales")
    page = await (await client.get(f"/app/lists/{lid}")).text()
    assert "Read only" in page
    assert "Delete list" not in page
    token = await csrf_of(client, "/app/lists")
    assert (await client.post(f"/app/lists/{lid}/delete", data={"_csrf": token})).status == 403
    assert await db.fetchval("SELECT count(*) FROM lists WHERE id = $1", lid) == 1


async def test_adding_a_person_to_a_list_from_the_person_page_in_a_browser(
    client: TestClient, db: asyncpg.Connection
) -> None:
    base = str(client.make_url("")).rstrip("/")
    email = await user_with_password(client, "marketing")
    lid = await db.fetchval("INSERT INTO lists (name) VALUES ('Newsletter') RETURNING id")
    person = await _person(db, "Cy", "cy@corp.example")
    async with launch_browser() as browser, new_page(browser) as page:
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        await page.goto(f"{base}/app/persons/{person}")
        await page.fill("input[name=email]", email)
        await page.fill("input[name=password]", PASSWORD)
        await page.click("form[action='/app/login'] button")
        await page.wait_for_url(f"{base}/app/persons/{person}")
        await page.select_option("form.add-to-list select[name=list_id]", str(lid))
        await page.click("form.add-to-list button")
        await page.wait_for_url(f"{base}/app/persons/{person}?*")
        assert "Added to the list" in await page.inner_text("[role=status]")
        await page.locator(f"#person-lists a[href='/app/lists/{lid}']").wait_for()
    assert errors == []
    await until(
        lambda: db.fetchval("SELECT count(*) FROM list_members WHERE list_id = $1", lid), "the member"
    )
