"""The marketing reports' figures on a small fixed month (crm_core/marketing/dataset.py), computed by hand, for
each attribution model; the rollups equal the raw computation after a replay, a merge and an erasure; the API
gives the same rows as JSON and CSV."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from crm_core.marketing.dataset import add_second_product, at, click, form, hit, newsletter, seed
from leadline_crm.http.keys import POOL
from leadline_crm.ingest.identity import apply_changes
from leadline_crm.ingest.touch import Touch
from leadline_crm.ingest.touches import write_batch, write_touches
from leadline_crm.marketing import queries, reports
from leadline_shared.events import IdentityChange
from leadline_shared.ids import new_id

pytestmark = pytest.mark.integration

MARCH = reports.Query(date(2026, 3, 1), date(2026, 3, 31))


def q(**kw: Any) -> reports.Query:
    return reports.Query(**{"start": MARCH.start, "end": MARCH.end, **kw})


def by_key(rows: list[dict[str, Any]], *keys: str) -> dict[Any, dict[str, Any]]:
    return {tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: r for r in rows}


# (leads, customers, revenue) per ad under each model: A's conversions have the clicks a1, n1; B's lead a2, a1, n1;
# C's lead and purchase have no click.
CREDIT = {
    "first": {"a1": (1, 1, 180), "a2": (1, 0, 0), "n1": (0, 0, 0)},
    "last": {"a1": (0, 0, 0), "a2": (0, 0, 0), "n1": (2, 1, 180)},
    "linear": {"a1": (0.8333, 0.5, 90), "a2": (0.3333, 0, 0), "n1": (0.8333, 0.5, 90)},
    "position": {"a1": (0.7, 0.5, 90), "a2": (0.4, 0, 0), "n1": (0.9, 0.5, 90)},
}
CLICKS = {"a1": 2, "a2": 1, "n1": 2}  # the bot's click on a1 is not one


@pytest.mark.parametrize("model", reports.MODELS)
async def test_ads_credit_conversions_by_each_attribution_model(
    crm_conn: asyncpg.Connection, model: str
) -> None:
    await seed(crm_conn)
    rows = by_key(await reports.ads(crm_conn, q(model=model)), "ad_id")
    assert set(rows) == {"a1", "a2", "n1"}
    for ad, (leads, customers, revenue) in CREDIT[model].items():
        row = rows[ad]
        assert (row["clicks"], row["leads"], row["customers"], row["revenue"]) == (
            CLICKS[ad],
            leads,
            customers,
            revenue,
        ), (model, ad)
        assert row["conversion_rate"] == round(customers / CLICKS[ad], 4)
    assert (rows["a1"]["campaign"], rows["a1"]["name"]) == ("Spring", "Banner A1")


async def test_ads_by_campaign_and_affiliate_add_up_their_ads(crm_conn: asyncpg.Connection) -> None:
    await seed(crm_conn)
    campaigns = by_key(await reports.ads(crm_conn, q(by="campaign", model="linear")), "campaign")
    assert (campaigns["Spring"]["clicks"], campaigns["Spring"]["leads"]) == (3, round(0.5 + 2 / 3, 4))
    assert (campaigns["(none)"]["clicks"], campaigns["(none)"]["revenue"]) == (2, 90)
    affiliates = await reports.affiliates(crm_conn, q(model="first"))
    assert [
        (r["affiliate_id"], r["prospect_clicks"], r["clicks"], r["leads"], r["customers"], r["revenue"])
        for r in affiliates
    ] == [("blog", 3, 3, 2, 1, 180), ("news", 2, 2, 0, 0, 0)]


async def test_a_short_lookback_leaves_old_clicks_out(crm_conn: asyncpg.Connection) -> None:
    await seed(crm_conn)
    rows = by_key(await reports.ads(crm_conn, q(model="first", lookback_days=2)), "ad_id")
    # A's lead (6 Mar) sees only n1 (5 Mar); B's lead (7 Mar) none; A's customer (10 Mar) and purchase none
    assert (rows["n1"]["leads"], rows["a1"]["leads"], rows["a2"]["leads"]) == (1, 0, 0)
    assert rows["a1"]["revenue"] == rows["n1"]["revenue"] == 0


async def test_the_funnel_counts_stages_rates_and_median_days(crm_conn: asyncpg.Connection) -> None:
    await seed(crm_conn)
    [row] = await reports.funnel(crm_conn, MARCH)
    assert row == {
        # C went from lead to customer: a skipped stage counts as reached at the same moment
        "visitors": 3,
        "leads": 3,
        "prospects": 3,
        "customers": 2,
        "lead_rate": 1.0,
        "prospect_rate": 1.0,
        "customer_rate": 0.6667,
        "median_days_to_lead": 4.0,  # A 4 days, B 4 d 23 h, C 0
        "median_days_to_prospect": 0.0,  # A 0, B 0, C 12 d 2 h
        "median_days_to_customer": round((4 + 2 / 24 + 0) / 2, 2),  # A 4 d 2 h, C 0
    }
    sources = by_key(await reports.funnel(crm_conn, q(by="source", model="first")), "source")
    assert (sources["blog"]["visitors"], sources["blog"]["leads"], sources["blog"]["customers"]) == (2, 2, 1)
    assert (sources["form"]["visitors"], sources["form"]["leads"], sources["form"]["customers"]) == (1, 1, 1)


async def test_products_compare_the_price_paid_with_the_list_price(crm_conn: asyncpg.Connection) -> None:
    await seed(crm_conn)
    [row] = await reports.products(crm_conn, MARCH)
    assert row == {
        "product": "W1",
        "name": "Widget",
        "units": 3,
        "revenue": 280.0,
        "price_avg": 93.33,
        "price_median": 95.0,
        "price_min": 90.0,
        "price_max": 100.0,
        "list_price": 100.0,
        "discount": 0.0667,
    }
    periods = await reports.products(crm_conn, q(by="period", period="month"))
    assert [(r["period"], r["units"]) for r in periods] == [("2026-03-01", 3)]
    assert await reports.products(crm_conn, reports.Query(date(2026, 4, 1), date(2026, 4, 30))) == []


async def test_demographics_count_leads_and_customers_by_country(crm_conn: asyncpg.Connection) -> None:
    await seed(crm_conn)
    rows = await reports.demographics(crm_conn, q(by="country"))
    assert rows == [
        {"country": "DE", "leads": 1, "customers": 1},
        {"country": "FR", "leads": 0, "customers": 1},
    ]


async def rollups_and_raw(conn: asyncpg.Connection) -> None:
    """Every rollup equals its computation from the raw tables, and so does every report."""
    for name, table in queries.ROLLUPS.items():
        raw = await conn.fetch(f"SELECT * FROM ({queries.RAW[name]}) AS r")  # noqa: S608
        kept = await conn.fetch(f"SELECT * FROM {table}")  # noqa: S608
        assert sorted(map(tuple, kept), key=repr) == sorted(map(tuple, raw), key=repr), name
    for report in reports.REPORTS:
        for model in reports.MODELS:
            assert await reports.compute(conn, report, q(model=model)) == await reports.compute(
                conn, report, q(model=model), naive=True
            ), (report, model)
    # ads and affiliates read the daily credits for the kept lookbacks, compute the others per request
    for lookback in (*reports.KEPT_LOOKBACKS, 12):
        for model in reports.MODELS:
            for report, by in (("ads", "ad"), ("ads", "campaign"), ("affiliates", "")):
                query = q(model=model, lookback_days=lookback, by=by)
                assert await reports.compute(conn, report, query) == await reports.compute(
                    conn, report, query, naive=True
                ), (report, model, lookback, by)


async def test_rollups_equal_the_raw_computation_after_a_replay_a_merge_and_an_erasure(
    crm_conn: asyncpg.Connection,
) -> None:
    m = await seed(crm_conn)
    await rollups_and_raw(crm_conn)

    # a replay of stored events changes nothing
    stored = await crm_conn.fetch("SELECT event FROM touchpoints")
    assert await write_touches(crm_conn, [Touch.parse(r["event"].encode()) for r in stored], now=at(25)) == 0
    await rollups_and_raw(crm_conn)

    # an anonymous visitor who clicked earlier than A turns out to be A
    early = new_id()
    await write_batch(
        crm_conn, [click(early, "news", "n1", at(1, 9)), hit(early, "page_view", at(1, 8))], now=at(1, 9)
    )
    await write_batch(crm_conn, [form(early, "early@example.com", "AT", at(9))], now=at(9))
    await apply_changes(
        crm_conn,
        [
            IdentityChange(
                change_id=new_id(), kind="merge", person_id=m.a, at=at(26).isoformat(), merged=[early]
            )
        ],
        now=at(26),
    )
    assert await crm_conn.fetchval("SELECT count(*) FROM marketing_clicks WHERE person_id = $1", m.a) == 3
    await rollups_and_raw(crm_conn)

    # a click that arrives late (before B's lead, ingested after it) and a purchase corrected, then removed
    await write_batch(crm_conn, [click(m.b, "news", "n1", at(6, 23))], now=at(27))
    await crm_conn.execute(
        "UPDATE purchases SET quantity = 5, purchased_on = '2026-03-09' WHERE person_id = $1", m.a
    )
    await rollups_and_raw(crm_conn)
    await crm_conn.execute("DELETE FROM purchases WHERE person_id = $1", m.c)
    await rollups_and_raw(crm_conn)

    # an erasure keeps the anonymous facts the reports count
    await apply_changes(
        crm_conn,
        [IdentityChange(change_id=new_id(), kind="erase", person_id=m.b, at=at(27).isoformat())],
        now=at(27),
    )
    await rollups_and_raw(crm_conn)


async def test_the_api_gives_the_same_rows_as_json_and_csv(
    client: TestClient, auth_headers: dict[str, dict[str, str]]
) -> None:
    async with client.server.app[POOL].acquire() as conn:
        m = await seed(conn)
        await add_second_product(conn, m)
        await newsletter(conn, m)
    for report in reports.REPORTS:
        url = f"/api/v1/reports/{report}?from=2026-03-01&to=2026-03-31&model=linear"
        resp = await client.get(url, headers=auth_headers["marketing"])
        assert resp.status == 200, await resp.text()
        rows = (await resp.json())["rows"]
        assert rows, report
        resp = await client.get(url + "&format=csv", headers=auth_headers["marketing"])
        assert (resp.status, resp.content_type) == (200, "text/csv")
        table = list(csv.DictReader(io.StringIO(await resp.text())))
        assert table == [{k: "" if v is None else str(v) for k, v in row.items()} for row in rows], report
    resp = await client.get("/api/v1/reports/forecast?to=2026-03-31", headers=auth_headers["marketing"])
    forecast = await resp.json()
    assert forecast["leads"]["method"].startswith("Holt linear trend")
    resp = await client.get(f"/api/v1/persons/{m.b}/suggestions?to=2026-03-31", headers=auth_headers["sales"])
    assert [s["sku"] for s in (await resp.json())["suggestions"]] == ["W2"]
    assert (await client.get("/api/v1/reports/ads", headers=auth_headers["sales"])).status == 403
    bad = await client.get("/api/v1/reports/ads?model=middle", headers=auth_headers["marketing"])
    assert bad.status == 422


async def test_cross_sell_finds_products_bought_together(crm_conn: asyncpg.Connection) -> None:
    m = await seed(crm_conn)
    await add_second_product(crm_conn, m)
    rows = by_key(await reports.cross_sell(crm_conn, MARCH), "product", "also_bought")
    # three buyers: A (W1, W2), B (W1), C (W1, W2)
    assert rows["W2", "W1"] == {"product": "W2", "product_name": "Gadget", "also_bought": "W1",
                                "also_bought_name": "Widget", "together": 2, "support": 0.6667,
                                "confidence": 1.0, "lift": 1.0}  # fmt: skip
    assert (rows["W1", "W2"]["confidence"], rows["W1", "W2"]["lift"]) == (0.6667, 1.0)
    [suggestion] = await reports.suggestions(crm_conn, uuid.UUID(m.b), MARCH)
    assert (suggestion["sku"], suggestion["confidence"], suggestion["because"]) == ("W2", 0.6667, ["W1"])
    assert await reports.suggestions(crm_conn, uuid.UUID(m.a), MARCH) == []  # has both already
