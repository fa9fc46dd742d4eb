"""The emails report by send comes a page at a time (a month holds thousands of sends): the page is the slice of
the whole listing in its order, the total counts every send, past the end the page is empty with the same total,
the API gives the page as JSON and as the same CSV rows, and a bad limit or offset is a 422."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from crm_core.marketing.dataset import newsletter, seed
from leadline_crm.http.keys import POOL
from leadline_crm.marketing import reports

pytestmark = pytest.mark.integration


def q(**kw: Any) -> reports.Query:
    return reports.Query(**{"start": date(2026, 3, 1), "end": date(2026, 3, 31), "by": "send", **kw})


async def test_a_page_of_sends_is_a_slice_of_the_listing_with_the_count_of_all(
    crm_conn: asyncpg.Connection,
) -> None:
    m = await seed(crm_conn)
    to_a, to_b = await newsletter(crm_conn, m)
    again_a, again_b = await newsletter(crm_conn, m)  # a second campaign's sends to A and B, A clicking again
    everything, total = await reports.email_page(crm_conn, q(limit=reports.MAX_SEND_PAGE))
    assert total == len(everything) == 4
    # A's two clicks share A's lead: the two sends to A come first (in an order of their own: they tie on revenue,
    # leads and clicks and are then ordered by id), B's after
    assert {r["send_id"] for r in everything[:2]} == {to_a, again_a}
    assert {r["send_id"] for r in everything[2:]} == {to_b, again_b}
    for limit, offset in ((1, 0), (2, 1), (3, 3)):
        page, count = await reports.email_page(crm_conn, q(model="last", limit=limit, offset=offset))
        whole = await reports.emails(crm_conn, q(model="last", limit=reports.MAX_SEND_PAGE))
        assert (page, count) == (whole[offset : offset + limit], 4), (limit, offset)
    assert await reports.email_page(crm_conn, q(limit=2, offset=9)) == ([], 4)
    assert await reports.email_page(
        crm_conn, q(limit=2, offset=0, start=date(2027, 1, 1), end=date(2027, 1, 2))
    ) == (
        [],
        0,
    )
    assert reports.Query.parse({"by": "send"}).limit == reports.SEND_PAGE


async def test_the_api_pages_sends_the_same_in_json_and_csv(
    client: TestClient, auth_headers: dict[str, dict[str, str]]
) -> None:
    async with client.server.app[POOL].acquire() as conn:
        m = await seed(conn)
        await newsletter(conn, m)
        await newsletter(conn, m)
    url = "/api/v1/reports/emails?from=2026-03-01&to=2026-03-31&by=send&limit=2&offset=1"
    resp = await client.get(url, headers=auth_headers["marketing"])
    assert resp.status == 200, await resp.text()
    doc = await resp.json()
    assert (doc["total"], doc["limit"], doc["offset"], len(doc["rows"])) == (4, 2, 1, 2)
    resp = await client.get(url + "&format=csv", headers=auth_headers["marketing"])
    table = list(csv.DictReader(io.StringIO(await resp.text())))
    assert table == [{k: "" if v is None else str(v) for k, v in row.items()} for row in doc["rows"]]
    for bad in ("limit=0", "limit=10001", "limit=ten", "offset=-1"):
        resp = await client.get(f"/api/v1/reports/emails?by=send&{bad}", headers=auth_headers["marketing"])
        assert resp.status == 422, bad
        assert "application/problem+json" in resp.headers["Content-Type"], bad
