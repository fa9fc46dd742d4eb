"""The service desk's pages with a signed-in session: the queue and its filters, opening a case from the form
(errors shown readably with the input kept), the case page (customer, purchases, contract, suggested articles,
comments, status moves with a readable 409), the KB editor and search, the contracts list, and roles."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from aiohttp.test_utils import TestClient

from crm_core.service.helpers import api, case, person
from crm_core.web import csrf_of, sign_in

pytestmark = pytest.mark.integration

H = dict[str, dict[str, str]]


async def test_an_agent_opens_works_and_closes_a_case_in_the_pages(
    client: TestClient, auth_headers: H
) -> None:
    pid = await person(client, auth_headers["sales"], "page@example.com", first_name="Paula")
    await api(client, "POST", "/api/v1/kb/articles", auth_headers["service"], 201,
              json={"title": "Heat pump humming", "body": "Clean the fan.", "public": True})  # fmt: skip
    await sign_in(client, "service")
    form = await (await client.get(f"/app/cases/new?person_id={pid}")).text()
    assert "Paula" in form
    token = await csrf_of(client, "/app/cases")
    resp = await client.post("/app/cases", data={"_csrf": token, "person_id": pid, "type": "fault",
                                                 "subject": "", "description": "It hums"}, allow_redirects=False)  # fmt: skip
    assert resp.status == 422
    assert "It hums" in await resp.text()  # the input is kept
    resp = await client.post("/app/cases", data={"_csrf": token, "person_id": pid, "type": "fault",
                                                 "subject": "Pump humming", "description": "The heat pump hums"},
                             allow_redirects=False)  # fmt: skip
    assert resp.status == 303
    number = resp.headers["Location"].split("/")[-1].split("?")[0]
    page = await (await client.get(f"/app/cases/{number}")).text()
    assert "Heat pump humming" in page  # suggested from the case's text
    assert "Paula" in page
    resp = await client.post(f"/app/cases/{number}/status", data={"_csrf": token, "status": "closed"})
    assert resp.status == 409
    assert "it can move to open, waiting, resolved" in await resp.text()
    for to in ("open", "resolved"):
        resp = await client.post(f"/app/cases/{number}/status", data={"_csrf": token, "status": to},
                                 allow_redirects=False)  # fmt: skip
        assert resp.status == 303
    resp = await client.post(f"/app/cases/{number}/comments", data={"_csrf": token, "body": "Fan <b>cleaned</b>",
                                                                    "public": "1"})  # fmt: skip
    page = await resp.text()
    assert "Fan &lt;b&gt;cleaned&lt;/b&gt;" in page
    assert "customer-visible" in page
    queue = await (await client.get("/app/cases?status=resolved")).text()
    assert number in queue
    assert number not in await (await client.get("/app/cases?status=open")).text()
    assert (await client.get("/app/cases?status=bogus")).status == 422
    resp = await client.get("/app/cases/SR-2000-000001")
    assert resp.status == 404
    assert "No case has this tracking number." in await resp.text()
    person_page = await (await client.get(f"/app/persons/{pid}")).text()
    assert f"case {number} (fault)" in person_page
    assert f"/app/cases/new?person_id={pid}" in person_page


async def test_kb_editor_search_and_contracts_pages(client: TestClient, auth_headers: H) -> None:
    pid = await person(client, auth_headers["sales"], "contract@example.com", first_name="Carl")
    await sign_in(client, "service")
    token = await csrf_of(client, "/app/kb/new")
    resp = await client.post("/app/kb", data={"_csrf": token, "title": "Filter change", "tags": "pump, filter",
                                              "body": "## Steps\n\nChange the **filter** yearly.", "public": "1"},
                             allow_redirects=False)  # fmt: skip
    assert resp.status == 303
    article = await (await client.get(resp.headers["Location"])).text()
    assert "<strong>filter</strong>" in article
    hits = await (await client.get("/app/kb?q=filters")).text()
    assert "<mark>filter</mark>" in hits
    today = date.today()
    resp = await client.post("/app/contracts", data={"_csrf": token, "person_id": pid, "name": "Care plan",
                                                     "starts_on": str(today), "ends_on": str(today - timedelta(1))})  # fmt: skip
    assert resp.status == 422
    assert "before starts_on" in await resp.text()
    resp = await client.post("/app/contracts", data={"_csrf": token, "person_id": pid, "name": "Care plan",
                                                     "starts_on": str(today - timedelta(300)),
                                                     "ends_on": str(today + timedelta(10)), "response_hours": "8"},
                             allow_redirects=False)  # fmt: skip
    assert resp.status == 303
    page = await (await client.get("/app/contracts")).text()
    renewals = page.split("Renewals due within 30 days")[1].split("All contracts")[0]
    assert "Care plan" in renewals
    assert "Carl" in renewals


async def test_roles_on_the_pages(client: TestClient, auth_headers: H) -> None:
    pid = await person(client, auth_headers["sales"], "ro@example.com")
    number = (await case(client, auth_headers["sales"], pid))["tracking_number"]
    await sign_in(client, "read_only")
    assert (await client.get("/app/cases")).status == 200
    page = await (await client.get(f"/app/cases/{number}")).text()
    assert "Add comment" not in page
    token = await csrf_of(client, "/app/cases")
    resp = await client.post(f"/app/cases/{number}/status", data={"_csrf": token, "status": "open"})
    assert resp.status == 403
    assert (await client.get("/app/kb/new")).status == 403
    assert (await client.get("/app/cases/new")).status == 403


async def test_the_case_page_shows_the_cases_product_with_its_articles(
    client: TestClient, auth_headers: H
) -> None:
    """Product information beside the case: the product of the case's purchase (else of its contract), its notes
    (Markdown rendered safely: its links work, scripts stay text) and the knowledge base articles about it, not
    another product's."""
    h, admin = auth_headers["service"], auth_headers["admin"]
    pid = await person(client, auth_headers["sales"], "prod@example.com")
    pump = await api(client, "POST", "/api/v1/products", admin, 201,
                     json={"sku": "HP-7", "name": "Heat pump 7", "list_price": 900,
                           "info": "[Manual](https://example.com/hp7.pdf) [bad](javascript:alert(1)) <script>x</script>"})  # fmt: skip
    panel = await api(client, "POST", "/api/v1/products", admin, 201,
                      json={"sku": "PV-1", "name": "Panel", "list_price": 200})  # fmt: skip
    for title, product in (("Resetting the HP-7", pump), ("Cleaning panels", panel)):
        await api(client, "POST", "/api/v1/kb/articles", h, 201,
                  json={"title": title, "body": "Steps.", "product_id": product["id"]})  # fmt: skip
    bought = await api(client, "POST", "/api/v1/purchases", auth_headers["sales"], 201,
                       json={"person_id": pid, "product_id": pump["id"], "quantity": 1, "price_paid": 900})  # fmt: skip
    number = (await case(client, h, pid, purchase_id=bought["id"]))["tracking_number"]
    assert (await api(client, "GET", f"/api/v1/cases/{number}", h, 200))["product_id"] == pump["id"]
    contract = await api(client, "POST", "/api/v1/contracts", h, 201,
                         json={"person_id": pid, "product_id": panel["id"], "name": "Panel care",
                               "starts_on": str(date.today()), "ends_on": str(date.today() + timedelta(days=300))})  # fmt: skip
    by_contract = (await case(client, h, pid, contract_id=contract["id"]))["tracking_number"]
    await sign_in(client, "service")
    page = await (await client.get(f"/app/cases/{number}")).text()
    card = page.split('id="product"', 1)[1].split("</section>", 1)[0]
    assert "Product: Heat pump 7" in card
    assert "&lt;script&gt;x&lt;/script&gt;" in card  # the notes are Markdown, rendered inert like articles
    assert '<a href="https://example.com/hp7.pdf" rel="nofollow noopener">Manual</a>' in card
    assert "[bad](javascript:alert(1))" in card  # an unsafe link stays text
    assert 'href="javascript' not in card
    assert "Resetting the HP-7" in card
    assert "Cleaning panels" not in card
    other = await (await client.get(f"/app/cases/{by_contract}")).text()
    assert "Product: Panel" in other
    # a case under no contract and no purchase has no product (this person's contract covers their new cases)
    plain = (await case(client, h, await person(client, auth_headers["sales"], "none@example.com")))[
        "tracking_number"
    ]
    assert 'id="product"' not in await (await client.get(f"/app/cases/{plain}")).text()
