"""The service report (issue 14): counts, medians to first response and to resolve, and service-level breaches by
product and type, as JSON, CSV and the page with its chart; the stored first response agrees with the naive search
of the comments the bench compares it with."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from crm_core.service.helpers import api, case, person
from crm_core.web import sign_in
from leadline_crm.service import histogram, report

pytestmark = pytest.mark.integration

H = dict[str, dict[str, str]]


async def _seed(client: TestClient, headers: H, conn: asyncpg.Connection) -> None:
    """Three complaints about the Pump (answered after 2 h, after 10 h and never, each due in 4 h, one resolved after
    20 h) and a question with no product."""
    pid = await person(client, headers["sales"], "r@example.com")
    product = await api(client, "POST", "/api/v1/products", headers["admin"], 201,
                        json={"sku": "pump", "name": "=Pump", "list_price": 10})  # fmt: skip
    purchase = await conn.fetchval(
        "INSERT INTO purchases (person_id, product_id, purchased_on, quantity, price_paid)"
        " VALUES ($1, $2, current_date, 1, 10) RETURNING id",
        uuid.UUID(pid), uuid.UUID(product["id"]),
    )  # fmt: skip
    numbers = []
    for _ in range(3):
        numbers.append((await case(client, headers["service"], pid, type="complaint",
                                   purchase_id=str(purchase)))["tracking_number"])  # fmt: skip
    numbers.append((await case(client, headers["service"], pid, type="question"))["tracking_number"])
    await api(client, "POST", f"/api/v1/cases/{numbers[0]}/comments", headers["service"], 201,
              json={"body": "On it", "public": True})  # fmt: skip
    await api(client, "POST", f"/api/v1/cases/{numbers[1]}/comments", headers["service"], 201,
              json={"body": "internal only", "public": False})  # fmt: skip
    await api(client, "POST", f"/api/v1/cases/{numbers[1]}/comments", headers["service"], 201,
              json={"body": "Fixed", "public": True})  # fmt: skip
    # put the history where the figures are known: opened 2 days ago, due 4 h later
    opened = datetime.now(UTC) - timedelta(days=2)
    for number, answered in zip(numbers[:3], (2, 10, None), strict=True):
        await conn.execute(
            "UPDATE cases SET created_at = $2, due_at = $2::timestamptz + interval '4 hours',"
            " first_response_at = CASE WHEN first_response_at IS NULL THEN NULL"
            " ELSE $2::timestamptz + make_interval(hours => $3) END WHERE tracking_number = $1",
            number, opened, answered or 0,
        )  # fmt: skip
        await conn.execute(
            "UPDATE case_comments SET created_at = $2::timestamptz + make_interval(hours => $3)"
            " WHERE public AND case_id = (SELECT id FROM cases WHERE tracking_number = $1)",
            number, opened, answered or 0,
        )  # fmt: skip
    await conn.execute(
        "UPDATE cases SET status = 'resolved', resolved_at = created_at + interval '20 hours'"
        " WHERE tracking_number = $1",
        numbers[0],
    )


async def test_the_report_counts_medians_and_breaches_by_product_and_type(
    client: TestClient, auth_headers: H, crm_conn: asyncpg.Connection
) -> None:
    await _seed(client, auth_headers, crm_conn)
    doc = await api(client, "GET", "/api/v1/reports/service", auth_headers["marketing"], 200)
    rows = {(r["product"], r["type"]): r for r in doc["rows"]}
    pump = rows[("=Pump", "complaint")]
    assert (pump["cases"], pump["open"]) == (3, 2)
    # 2 h and 10 h (the unanswered one has none yet), estimated from the rollup's buckets (9.1 % at most)
    assert pump["median_first_response_hours"] == pytest.approx(6.0, rel=histogram.RELATIVE_ERROR)
    assert pump["median_resolve_hours"] == pytest.approx(20.0, rel=histogram.RELATIVE_ERROR)
    assert (pump["mean_first_response_hours"], pump["mean_resolve_hours"]) == (6.0, 20.0)  # exact
    assert pump["breaches"] == 2  # answered after 10 h, and never answered past its due time
    question = rows[("(no product)", "question")]
    assert (question["cases"], question["breaches"], question["median_first_response_hours"]) == (1, 0, None)
    assert doc["by_type"]["complaint"] == {"cases": 3, "open": 2, "breaches": 2}
    # the naive search of the comments gives the same figures as the stored first responses
    span = report.Range.parse({})
    raw = await report.raw_rows(crm_conn, span)
    assert await report.raw_rows(crm_conn, span, naive=True) == raw
    assert [r["median_first_response_hours"] for r in raw if r["product"] == "=Pump"] == [6.0]
    resp = await client.get("/api/v1/reports/service?format=csv", headers=auth_headers["service"])
    assert resp.status == 200
    assert resp.content_type == "text/csv"
    table = list(csv.reader(io.StringIO(await resp.text())))
    assert table[0] == list(report.COLUMNS)
    pump_row = next(r for r in table if r[:2] == ["'=Pump", "complaint"])  # a formula-looking name made inert
    assert pump_row[2:4] + pump_row[6:] == ["3", "2", "2", "6.0", "20.0"]
    old = await api(client, "GET", "/api/v1/reports/service?from=2001-01-01&to=2001-01-31",
                    auth_headers["service"], 200)  # fmt: skip
    assert old["rows"] == []
    bad = await client.get(
        "/api/v1/reports/service?from=2026-02-01&to=2026-01-01", headers=auth_headers["service"]
    )
    assert bad.status == 422
    assert "from must not be after to" in (await bad.json())["detail"]
    assert (
        await client.get("/api/v1/reports/service?from=someday", headers=auth_headers["service"])
    ).status == 422


async def test_the_report_page_shows_the_table_and_the_chart(
    client: TestClient, auth_headers: H, crm_conn: asyncpg.Connection
) -> None:
    await _seed(client, auth_headers, crm_conn)
    await sign_in(client, "service")
    page = await client.get("/app/service/report")
    html = await page.text()
    assert page.status == 200
    assert 'class="chart" data-chart=' in html
    assert '<td>=Pump</td><td>complaint</td><td class="num">3</td>' in html
    assert "/api/v1/reports/service?from=" in html
    bad = await client.get("/app/service/report?from=nonsense")
    assert bad.status == 422
    assert "from: expected a date" in await bad.text()
