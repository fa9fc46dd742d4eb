"""Ad impressions in crm-core (issue 13): counted per day, affiliate and ad (migration 0027), never a person or a
touchpoint, a replay counting nothing twice, bots left out; the ads report's impressions and click-through rate,
in JSON and CSV alike."""

from __future__ import annotations

import csv
import io
from datetime import date

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from crm_core.marketing.dataset import at, impression, seed, shown
from leadline_crm.http.keys import POOL
from leadline_crm.ingest.touches import write_batch
from leadline_crm.marketing import reports

pytestmark = pytest.mark.integration

MARCH = reports.Query(date(2026, 3, 1), date(2026, 3, 31))


async def test_impressions_are_counted_per_day_and_ad_and_never_become_persons_or_touchpoints(
    crm_conn: asyncpg.Connection,
) -> None:
    events = await shown(crm_conn, at(3))
    assert await write_batch(crm_conn, events, now=at(3)) == 0  # a replayed batch counts nothing twice
    rows = await crm_conn.fetch(
        "SELECT day, affiliate_id, ad_id, impressions FROM marketing_impressions_daily ORDER BY 1, 3"
    )
    assert [(str(r[0]), r[1], r[2], r[3]) for r in rows] == [
        ("2026-03-02", "blog", "a1", 10),
        ("2026-03-02", "blog", "a2", 4),
        ("2026-03-03", "blog", "x9", 3),
    ]
    assert await crm_conn.fetchval("SELECT count(*) FROM touchpoints") == 0
    assert await crm_conn.fetchval("SELECT count(*) FROM persons") == 0


async def test_a_batch_mixing_impressions_and_clicks_writes_the_clicks_as_before(
    crm_conn: asyncpg.Connection,
) -> None:
    await seed(crm_conn)
    before = await crm_conn.fetchval("SELECT count(*) FROM touchpoints")
    await shown(crm_conn, at(3))
    assert await crm_conn.fetchval("SELECT count(*) FROM touchpoints") == before
    rows = {r["ad_id"]: r for r in await reports.ads(crm_conn, MARCH)}
    # clicks (dataset.py): a1 2, a2 1, n1 2; impressions: a1 10, a2 4, n1 none, x9 3 without a click
    assert {ad: (r["impressions"], r["clicks"], r["click_through_rate"]) for ad, r in rows.items()} == {
        "a1": (10, 2, 0.2),
        "a2": (4, 1, 0.25),
        "n1": (0, 2, 0.0),
        "x9": (3, 0, 0.0),
    }
    assert rows["a1"]["conversion_rate"] == round(rows["a1"]["customers"] / 2, 4)
    campaigns = {
        r["campaign"]: r
        for r in await reports.ads(crm_conn, reports.Query(MARCH.start, MARCH.end, by="campaign"))
    }
    assert (campaigns["Spring"]["impressions"], campaigns["Spring"]["clicks"]) == (14, 3)
    assert campaigns["Spring"]["click_through_rate"] == round(3 / 14, 4)
    affiliates = await reports.ads(crm_conn, reports.Query(MARCH.start, MARCH.end, by="affiliate"))
    assert {r["affiliate_id"]: r["impressions"] for r in affiliates} == {"blog": 17, "news": 0}
    naive = {r["ad_id"]: r["impressions"] for r in await reports.ads(crm_conn, MARCH, naive=True)}
    assert naive == {ad: r["impressions"] for ad, r in rows.items()}


async def test_the_ads_report_shows_impressions_and_click_through_in_json_and_csv(
    client: TestClient, auth_headers: dict[str, dict[str, str]]
) -> None:
    async with client.server.app[POOL].acquire() as conn:
        await seed(conn)
        await shown(conn, at(3))
    url = "/api/v1/reports/ads?from=2026-03-01&to=2026-03-31&model=linear"
    resp = await client.get(url, headers=auth_headers["marketing"])
    assert resp.status == 200, await resp.text()
    rows = (await resp.json())["rows"]
    a1 = next(r for r in rows if r["ad_id"] == "a1")
    assert (a1["impressions"], a1["clicks"], a1["click_through_rate"]) == (10, 2, 0.2)
    resp = await client.get(url + "&format=csv", headers=auth_headers["marketing"])
    assert (resp.status, resp.content_type) == (200, "text/csv")
    table = list(csv.DictReader(io.StringIO(await resp.text())))
    assert table == [{k: "" if v is None else str(v) for k, v in row.items()} for row in rows]
    assert next(r for r in table if r["ad_id"] == "a1")["click_through_rate"] == "0.2"


async def test_ids_older_than_the_topics_retention_are_forgotten_and_the_counts_stay(
    crm_conn: asyncpg.Connection,
) -> None:
    await shown(crm_conn, at(3))  # 15 real ones on 2 and 3 March
    later = [impression("blog", "a1", at(12)) for _ in range(10)]  # 12 March: 2 March is 10 days back
    assert await write_batch(crm_conn, later, now=at(12)) == 10
    kept = await crm_conn.fetch(
        "SELECT day::text, count(*) FROM marketing_impressions_seen GROUP BY 1 ORDER BY 1"
    )
    assert [tuple(r) for r in kept] == [("2026-03-12", 10)]  # 3 March is 9 days back: past 8 days, gone too
    total = await crm_conn.fetchval("SELECT sum(impressions) FROM marketing_impressions_daily")
    assert total == 10 + 4 + 3 + 10
