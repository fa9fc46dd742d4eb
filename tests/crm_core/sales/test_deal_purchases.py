"""A won deal records its purchases (issue 15): through the purchases API with ``deal_id`` and the deal page's
form; the purchase is the deal's person's and its rep the deal's owner; an open deal, another person or a deal
without a person is refused."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from crm_core.web import csrf_of, sign_in

pytestmark = pytest.mark.integration

H = dict[str, dict[str, str]]


async def ok(resp: Any, status: int = 201) -> Any:
    assert resp.status == status, await resp.text()
    return await resp.json()


async def setup(client: TestClient, auth_headers: H) -> dict[str, Any]:
    admin, sales = auth_headers["admin"], auth_headers["sales"]
    product = await ok(await client.post("/api/v1/products", json={"sku": "seat", "name": "Seat licence",
                                                                   "list_price": 120}, headers=admin))  # fmt: skip
    person = await ok(await client.post("/api/v1/leads", json={"email": "eve@buyer.example"}, headers=sales))
    other = await ok(await client.post("/api/v1/leads", json={"email": "mal@buyer.example"}, headers=sales))
    deal = await ok(await client.post("/api/v1/deals", json={"title": "Seats", "amount": 1200,
                                                             "person_id": person["id"]}, headers=sales))  # fmt: skip
    return {"product": product, "person": person, "other": other, "deal": deal}


async def test_a_won_deal_records_purchases_with_the_deals_owner_as_rep(
    client: TestClient, auth_headers: H, crm_conn: asyncpg.Connection
) -> None:
    """Revenue per rep (the sales volume) counts a deal's purchases for the rep who won it, whoever typed them."""
    admin, sales = auth_headers["admin"], auth_headers["sales"]
    s = await setup(client, auth_headers)
    line = {
        "person_id": s["person"]["id"],
        "product_id": s["product"]["id"],
        "quantity": 10,
        "deal_id": s["deal"]["id"],
    }
    early = await client.post("/api/v1/purchases", json=line, headers=admin)
    assert early.status == 409
    assert "only a won deal" in (await early.json())["detail"]
    await ok(await client.patch(f"/api/v1/deals/{s['deal']['id']}", json={"stage": "Won", "reason": "signed"},
                                headers=sales), 200)  # fmt: skip
    wrong = await client.post("/api/v1/purchases", json=line | {"person_id": s["other"]["id"]}, headers=admin)
    assert wrong.status == 422
    assert "not the deal's person" in (await wrong.json())["detail"]

    bought = await ok(await client.post("/api/v1/purchases", json=line, headers=admin))
    rep = await crm_conn.fetchval("SELECT id FROM users WHERE email = 'rep@example.com'")
    assert (bought["deal_id"], bought["sales_rep"], bought["price_paid"]) == (s["deal"]["id"], str(rep), 1200)
    deal = await ok(await client.get(f"/api/v1/deals/{s['deal']['id']}", headers=sales), 200)
    assert [(p["product"], p["quantity"]) for p in deal["purchases"]] == [("Seat licence", 10)]
    listed = await ok(await client.get(f"/api/v1/purchases?deal_id={s['deal']['id']}", headers=sales), 200)
    assert [p["id"] for p in listed["items"]] == [bought["id"]]
    assert (
        await crm_conn.fetchval("SELECT purchases FROM persons WHERE person_id = $1", bought["person_id"])
        == 1
    )


async def test_a_deal_without_a_person_records_no_purchase(client: TestClient, auth_headers: H) -> None:
    sales = auth_headers["sales"]
    s = await setup(client, auth_headers)
    company = await ok(await client.post("/api/v1/companies", json={"name": "Buyer Ltd"}, headers=sales))
    deal = await ok(await client.post("/api/v1/deals", json={"title": "Ltd", "company_id": company["id"],
                                                             "stage": "Won", "reason": "signed"}, headers=sales))  # fmt: skip
    line = {
        "person_id": s["person"]["id"],
        "product_id": s["product"]["id"],
        "quantity": 1,
        "deal_id": deal["id"],
    }
    resp = await client.post("/api/v1/purchases", json=line, headers=sales)
    assert resp.status == 422
    assert "the deal has no person" in (await resp.json())["detail"]


async def test_the_deal_page_records_a_purchase_of_a_won_deal(
    client: TestClient, auth_headers: H, crm_conn: asyncpg.Connection
) -> None:
    s = await setup(client, auth_headers)
    page = f"/app/deals/{s['deal']['id']}"
    await sign_in(client, "sales")
    assert "Record purchase" not in await (await client.get(page)).text()  # open: no form
    await ok(await client.patch(f"/api/v1/deals/{s['deal']['id']}", json={"stage": "Won", "reason": "signed"},
                                headers=auth_headers["sales"]), 200)  # fmt: skip
    token = await csrf_of(client, page)
    form = {"_csrf": token, "product_id": s["product"]["id"], "quantity": "3", "price_paid": "300.00"}
    resp = await client.post(f"{page}/purchases", data=form, allow_redirects=False)
    assert resp.status == 303
    html = await (await client.get(resp.headers["Location"])).text()
    assert "Purchase recorded" in html
    row = html.split('id="deal-purchases"', 1)[1].split("</table>", 1)[0]
    assert "Seat licence" in row
    assert "300.00" in row
    bad = await client.post(f"{page}/purchases", data=form | {"quantity": "three"})
    assert bad.status == 422
    assert "quantity and price: numbers" in await bad.text()
    assert await crm_conn.fetchval("SELECT count(*) FROM purchases WHERE deal_id = $1", s["deal"]["id"]) == 1
