"""The sales pages without JavaScript: the board moves a deal with a plain form post, the deal table filters and
exports CSV, a company page shows its people, deals and tasks, tasks are done or snoozed, overdue tasks reach the
rep's home page, and the dashboard draws its charts from the sales volume."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from crm_core.web import csrf_of, sign_in
from leadline_crm.http.keys import POOL

pytestmark = pytest.mark.integration

H = dict[str, dict[str, str]]


async def seed(client: TestClient, sales: dict[str, str]) -> dict[str, Any]:
    """A company with a person, two deals and an overdue task of the rep's."""
    company = await (await client.post("/api/v1/companies", json={"name": "Hooli", "domain": "hooli.example"},
                                       headers=sales)).json()  # fmt: skip
    person = await (await client.post("/api/v1/leads", json={"email": "gavin@hooli.example", "first_name": "Gavin"},
                                      headers=sales)).json()  # fmt: skip
    deals = []
    for title, amount in (("Hooli phones", 5000), ("=1+1 Hooli", 700)):
        resp = await client.post("/api/v1/deals", json={"title": title, "amount": amount, "person_id": person["id"],
                                                       "company_id": company["id"]}, headers=sales)  # fmt: skip
        assert resp.status == 201, await resp.text()
        deals.append(await resp.json())
    due = (datetime.now(UTC) - timedelta(hours=3)).isoformat()
    task = await client.post("/api/v1/tasks", json={"title": "Call Gavin back", "due_at": due,
                                                    "person_id": person["id"]}, headers=sales)  # fmt: skip
    assert task.status == 201, await task.text()
    return {"company": company, "person": person, "deals": deals, "task": await task.json()}


async def test_the_board_moves_a_deal_with_a_plain_form_post(client: TestClient, auth_headers: H) -> None:
    """Without JavaScript a rep still moves deals: each card is a form."""
    sales = auth_headers["sales"]
    data = await seed(client, sales)
    await sign_in(client, sales)
    page = await client.get("/app/deals/board")
    html = await page.text()
    assert page.status == 200
    assert "Hooli phones" in html
    assert "Qualified" in html
    stages = {
        s["name"]: s["id"]
        for s in (await (await client.get("/api/v1/pipelines", headers=sales)).json())["items"][0]["stages"]
    }
    token = await csrf_of(client, "/app/deals/board")
    deal = data["deals"][0]["id"]
    resp = await client.post(f"/app/deals/{deal}/move", data={"_csrf": token, "stage_id": stages["Meeting"],
                                                              "next": "/app/deals/board"}, allow_redirects=False)  # fmt: skip
    assert resp.status == 303
    assert resp.headers["Location"] == "/app/deals/board"
    moved = await (await client.get(f"/api/v1/deals/{deal}", headers=sales)).json()
    assert moved["stage"] == "Meeting"
    assert moved["history"][-1]["actor"].startswith("user:")
    # losing without a reason is refused with a readable page; the same through htmx answers 422 with the words
    resp = await client.post(f"/app/deals/{deal}/move", data={"_csrf": token, "stage_id": stages["Lost"]})
    assert resp.status == 422
    assert "say why the deal was lost" in await resp.text()
    resp = await client.post(f"/app/deals/{deal}/move", data={"_csrf": token, "stage_id": stages["Won"]},
                             headers={"HX-Request": "true"})  # fmt: skip
    assert resp.status == 204
    assert resp.headers["HX-Refresh"] == "true"
    # a new deal from the board's form
    resp = await client.post("/app/deals", data={"_csrf": token, "title": "Walk-in", "amount": "1,200.50",
                                                 "company_id": data["company"]["id"]}, allow_redirects=False)  # fmt: skip
    assert resp.status == 303, await resp.text()
    assert "Walk-in" in await (await client.get("/app/deals/board")).text()


async def test_the_deal_table_filters_and_exports_csv(client: TestClient, auth_headers: H) -> None:
    """What a manager downloads is what the table shows, and a title cannot run in a spreadsheet."""
    sales = auth_headers["sales"]
    await seed(client, sales)
    await sign_in(client, sales)
    html = await (await client.get("/app/deals?q=phones")).text()
    assert "Hooli phones" in html
    assert "=1+1 Hooli" not in html
    assert (await client.get("/app/deals?status=nope")).status == 422
    body = await (await client.get("/app/deals.csv?sort=amount&dir=desc")).text()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [r["title"] for r in rows] == ["Hooli phones", "'=1+1 Hooli"]
    assert rows[0]["company"] == "Hooli"
    assert rows[0]["stage"] == "Qualified"
    api = await (await client.get("/api/v1/deals?owner=me&sort=amount&dir=asc", headers=sales)).json()
    assert [d["title"] for d in api["items"]] == ["=1+1 Hooli", "Hooli phones"]


async def test_the_company_list_exports_csv_with_its_search(client: TestClient, auth_headers: H) -> None:
    """The companies a manager downloads are those the list shows for the same search, every page of them, and a
    name cannot run in a spreadsheet."""
    sales = auth_headers["sales"]
    await seed(client, sales)
    for name, domain in (("=2+2 Hooli Labs", "labs.hooli.example"), ("Initech", "initech.example")):
        resp = await client.post("/api/v1/companies", json={"name": name, "domain": domain}, headers=sales)
        assert resp.status == 201, await resp.text()
    await sign_in(client, sales)
    html = await (await client.get("/app/companies?q=hooli")).text()
    assert 'href="/app/companies.csv?q=hooli"' in html
    body = await (await client.get("/app/companies.csv?q=hooli")).text()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [(r["name"], r["domain"]) for r in rows] == [
        ("'=2+2 Hooli Labs", "labs.hooli.example"),
        ("Hooli", "hooli.example"),
    ]
    assert (rows[1]["people"], rows[1]["open_deals"]) == ("1", "2")
    every = list(csv.DictReader(io.StringIO(await (await client.get("/app/companies.csv")).text())))
    assert {r["name"] for r in every} >= {"Hooli", "Initech", "'=2+2 Hooli Labs"}


async def test_company_page_tasks_and_home(client: TestClient, auth_headers: H) -> None:
    """A rep's overdue task is on their home page; done and snoozed ones leave it."""
    sales = auth_headers["sales"]
    data = await seed(client, sales)
    await sign_in(client, sales)
    company = await (await client.get(f"/app/companies/{data['company']['id']}")).text()
    assert "Gavin" in company
    assert "by email domain" in company
    assert "Hooli phones" in company
    assert "Hooli" in await (await client.get("/app/companies?q=hoo")).text()
    home = await (await client.get("/app")).text()
    assert "Call Gavin back" in home
    token = await csrf_of(client, "/app")
    resp = await client.post(f"/app/tasks/{data['task']['id']}/snooze", data={"_csrf": token, "next": "/app"},
                             allow_redirects=False)  # fmt: skip
    assert resp.status == 303
    assert "Call Gavin back" not in await (await client.get("/app")).text()
    # a task from the company page, due yesterday, then done
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    resp = await client.post("/app/tasks", data={"_csrf": token, "title": "Send the quote", "due_on": yesterday,
                                                 "company_id": data["company"]["id"], "next": "/app"},
                             allow_redirects=False)  # fmt: skip
    assert resp.status == 303
    assert "Task+added" in resp.headers["Location"]
    assert "Send the quote" in await (await client.get("/app")).text()
    task = await client.server.app[POOL].fetchval("SELECT id FROM tasks WHERE title = 'Send the quote'")
    resp = await client.post(f"/app/tasks/{task}/done", data={"_csrf": token}, allow_redirects=False)
    assert resp.status == 303
    assert "Send the quote" not in await (await client.get("/app")).text()


async def test_the_dashboard_shows_volume_and_weighted_pipeline(client: TestClient, auth_headers: H) -> None:
    """A manager sees deals won, revenue and activities per rep, and the pipeline weighted by probability."""
    sales = auth_headers["sales"]
    data = await seed(client, sales)
    await client.patch(f"/api/v1/deals/{data['deals'][0]['id']}", json={"stage": "Won"}, headers=sales)
    await sign_in(client, sales)
    page = await client.get("/app/sales")
    html = await page.text()
    assert page.status == 200, html
    assert html.count('class="chart"') == 5  # weighted pipeline, won, revenue, activities, won versus target
    assert "Rita Rep" in html
    assert "5,000.00" in html  # won this month
    assert "70.00 EUR" in html  # 10 % of the open 700
    resp = await client.get(f"/app/sales?pipeline={uuid.uuid4()}")
    assert resp.status == 404


async def test_a_deal_page_shows_its_history_and_edits_it(client: TestClient, auth_headers: H) -> None:
    """A rep opens a card: who moved it when and why, its tasks, and its facts to change."""
    sales = auth_headers["sales"]
    data = await seed(client, sales)
    deal = data["deals"][0]["id"]
    await client.patch(
        f"/api/v1/deals/{deal}", json={"stage": "Proposal", "reason": "asked for a quote"}, headers=sales
    )
    await sign_in(client, sales)
    html = await (await client.get(f"/app/deals/{deal}")).text()
    assert "Qualified → Proposal" in html
    assert "asked for a quote" in html
    assert "Rita Rep" in html
    token = await csrf_of(client, f"/app/deals/{deal}")
    resp = await client.post(f"/app/deals/{deal}", data={"_csrf": token, "title": "Hooli phones v2", "amount": "6,000",
                                                         "currency": "USD"}, allow_redirects=False)  # fmt: skip
    assert resp.status == 303, await resp.text()
    changed = await (await client.get(f"/api/v1/deals/{deal}", headers=sales)).json()
    assert (changed["title"], changed["amount"], changed["currency"]) == ("Hooli phones v2", 6000.0, "USD")
    stages = {
        s["name"]: s["id"]
        for s in (await (await client.get("/api/v1/pipelines", headers=sales)).json())["items"][0]["stages"]
    }
    resp = await client.post(f"/app/deals/{deal}/move", data={"_csrf": token, "stage_id": stages["Lost"],
                                                              "next": f"/app/deals/{deal}"})  # fmt: skip
    assert resp.status == 422
    assert "Stage history" in await resp.text()
    assert (await client.get(f"/app/deals/{uuid.uuid4()}")).status == 404
