"""Won versus target per rep (issue 15): an admin sets a rep's monthly target (API and the dashboard's form); the
API and the sales dashboard show it beside the value of the deals the rep won that month."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from crm_core.web import csrf_of, sign_in

pytestmark = pytest.mark.integration

H = dict[str, dict[str, str]]
MONTH = datetime.now(UTC).strftime("%Y-%m")
"""A valid month, for the refusals; a test that counts won deals asks :func:`month_won` instead."""


async def month_won(crm_conn: asyncpg.Connection) -> str:
    """The month (UTC) the test's deals were won in. Not the month the module was imported in: a run that crossed
    midnight at a month's end won its deals in the next month and found none (CI at 00:05 on December 1)."""
    month: str = await crm_conn.fetchval(
        "SELECT to_char(max(closed_at) AT TIME ZONE 'UTC', 'YYYY-MM') FROM deals WHERE status = 'won'"
    )
    return month


async def won_deal(client: TestClient, sales: dict[str, str], amount: int) -> None:
    lead = await (
        await client.post("/api/v1/leads", json={"email": f"buyer{amount}@example.com"}, headers=sales)
    ).json()
    deal = await client.post("/api/v1/deals", json={"title": f"Deal {amount}", "amount": amount,
                                                    "person_id": lead["id"]}, headers=sales)  # fmt: skip
    won = await client.patch(f"/api/v1/deals/{(await deal.json())['id']}", json={"stage": "Won", "reason": "signed"},
                             headers=sales)  # fmt: skip
    assert won.status == 200, await won.text()


async def test_won_versus_target_per_rep_through_the_api(
    client: TestClient, auth_headers: H, crm_conn: asyncpg.Connection
) -> None:
    """A manager sees how far each rep is: target, deals won and the share attained, for the month."""
    admin, sales = auth_headers["admin"], auth_headers["sales"]
    await won_deal(client, sales, 3000)
    await won_deal(client, sales, 1000)
    month = await month_won(crm_conn)
    rep = str(await crm_conn.fetchval("SELECT id FROM users WHERE email = 'rep@example.com'"))
    body = {"user_id": rep, "month": month, "amount": 10000}
    assert (await client.put("/api/v1/sales/targets", json=body, headers=sales)).status == 403
    first = await client.put("/api/v1/sales/targets", json=body, headers=admin)
    assert first.status == 200, await first.text()
    again = await client.put("/api/v1/sales/targets", json=body | {"amount": 8000}, headers=admin)
    assert (await again.json())["amount"] == 8000

    doc = await (await client.get(f"/api/v1/sales/targets?month={month}", headers=sales)).json()
    [row] = doc["items"]
    assert (doc["month"], row["rep_name"], row["currency"]) == (month, "Rita Rep", "EUR")
    assert (row["target"], row["deals_won"], row["won_value"], row["attained"]) == (8000, 2, 4000, 50.0)
    assert (await (await client.get("/api/v1/sales/targets?month=2020-01", headers=sales)).json())[
        "items"
    ] == []
    audited = await crm_conn.fetch(
        "SELECT action, changes FROM audit_log WHERE entity_type = 'sales/targets' ORDER BY id"
    )
    assert [a["action"] for a in audited] == ["create", "update"]
    assert audited[1]["changes"]["amount"] == ["10000.00", "8000.00"]


@pytest.mark.parametrize(
    ("body", "detail"),
    [({"month": "2026-13", "amount": 1}, "month"), ({"month": "0000-01", "amount": 1}, "month"),
     ({"month": MONTH, "amount": -5}, "amount"),
     ({"month": MONTH, "amount": 1, "user_id": "00000000-0000-0000-0000-000000000001"}, "no such user")],
)  # fmt: skip
async def test_a_bad_target_is_refused(
    client: TestClient, auth_headers: H, crm_conn: asyncpg.Connection, body: dict[str, object], detail: str
) -> None:
    rep = str(await crm_conn.fetchval("SELECT id FROM users WHERE email = 'rep@example.com'"))
    resp = await client.put(
        "/api/v1/sales/targets", json={"user_id": rep} | body, headers=auth_headers["admin"]
    )
    assert resp.status == 422
    assert detail in (await resp.json())["detail"]
    assert await crm_conn.fetchval("SELECT count(*) FROM sales_targets") == 0


async def test_the_dashboard_shows_won_versus_target_and_an_admin_sets_one(
    client: TestClient, auth_headers: H, crm_conn: asyncpg.Connection
) -> None:
    """Beside deals won on the sales dashboard; a bad amount is a readable 422 page keeping the dashboard."""
    await won_deal(client, auth_headers["sales"], 2500)
    month = await month_won(crm_conn)
    await sign_in(client, "admin")
    rep = str(await crm_conn.fetchval("SELECT id FROM users WHERE email = 'rep@example.com'"))
    token = await csrf_of(client, "/app/sales")
    form = {"_csrf": token, "user_id": rep, "month": month, "amount": "5000", "currency": "EUR"}
    resp = await client.post("/app/sales/targets", data=form, allow_redirects=False)
    assert resp.status == 303
    page = await (await client.get(resp.headers["Location"])).text()
    assert "Target set." in page
    row = page.split('<tr data-rep="Rita Rep">', 1)[1].split("</tr>", 1)[0]
    assert "5,000.00 EUR" in row
    assert "2,500.00 EUR" in row
    assert "50.0 %" in row
    bad = await client.post("/app/sales/targets", data=form | {"amount": "lots"})
    assert bad.status == 422
    assert "Target not set: amount" in await bad.text()
    assert await crm_conn.fetchval("SELECT amount FROM sales_targets") == 5000
