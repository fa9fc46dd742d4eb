"""The funnel by source or campaign credits each stage move to the person's arrivals (touches from a UTM source
or an outside referrer) in the lookback before it, by each attribution model, on the small fixed month of
dataset.py computed by hand; the arrivals' rollup and the credited funnel equal the raw computation after a
replay and a merge; the API takes the model and says it."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from crm_core.marketing.dataset import at, click, erase, form, hit, merge, seed
from leadline_crm.http.keys import POOL
from leadline_crm.ingest.touch import Touch
from leadline_crm.ingest.touches import write_batch, write_touches
from leadline_crm.marketing import queries, reports
from leadline_shared.ids import new_id

pytestmark = pytest.mark.integration

MARCH = reports.Query(date(2026, 3, 1), date(2026, 3, 31))


def q(**kw: Any) -> reports.Query:
    return reports.Query(**{"start": MARCH.start, "end": MARCH.end, **kw})


# (leads, prospects, customers) per source. Arrivals: A's clicks blog (2 Mar), news (5 Mar) before A's lead and
# prospect (6 Mar) and customer (10 Mar); B's clicks blog (2 Mar), blog (3 Mar), news (4 Mar) before B's lead and
# prospect (7 Mar). C has no arrival (only a form): C's moves go whole to C's first visit, the form.
CREDITED = {
    "first": {"blog": (2, 2, 1), "news": (0, 0, 0)},
    "last": {"blog": (0, 0, 0), "news": (2, 2, 1)},
    "linear": {"blog": (1.1667, 1.1667, 0.5), "news": (0.8333, 0.8333, 0.5)},
    "position": {"blog": (1.1, 1.1, 0.5), "news": (0.9, 0.9, 0.5)},
}
# median days: to lead A 4, B 4 d 23 h (blog and news alike when both have credit); to customer A 4 d 2 h
BOTH = (round((4 + 4 + 23 / 24) / 2, 2), 0.0, round(4 + 2 / 24, 2))
NONE = (0.0, 0.0, 0.0)
MEDIANS = {
    "first": {"blog": BOTH, "news": NONE},
    "last": {"blog": NONE, "news": BOTH},
    "linear": {"blog": BOTH, "news": BOTH},
    "position": {"blog": BOTH, "news": BOTH},
}


@pytest.mark.parametrize("model", reports.MODELS)
async def test_the_funnel_credits_sources_by_each_model(crm_conn: asyncpg.Connection, model: str) -> None:
    await seed(crm_conn)
    rows = {r["source"]: r for r in await reports.funnel(crm_conn, q(by="source", model=model))}
    assert set(rows) == {"blog", "news", "form"}
    figures = ("leads", "prospects", "customers")
    medians = ("median_days_to_lead", "median_days_to_prospect", "median_days_to_customer")
    for source, counts in CREDITED[model].items():
        assert tuple(rows[source][f] for f in figures) == counts, (model, source)
        assert tuple(rows[source][f] for f in medians) == MEDIANS[model][source], (model, source)
    assert tuple(rows["form"][f] for f in figures) == (1, 1, 1)
    assert tuple(rows["form"][f] for f in medians) == (0.0, round(12 + 2 / 24, 2), 0.0)  # C: lead to customer
    assert (rows["blog"]["visitors"], rows["news"]["visitors"], rows["form"]["visitors"]) == (2, 0, 1)
    assert rows["blog"]["lead_rate"] == round(CREDITED[model]["blog"][0] / 2, 4)
    total = sum(r["leads"] for r in rows.values())
    assert round(total, 4) == 3  # every lead credited once, whatever the model


async def test_a_short_lookback_credits_only_the_arrivals_in_it(crm_conn: asyncpg.Connection) -> None:
    await seed(crm_conn)
    rows = {
        r["campaign"]: r
        for r in await reports.funnel(crm_conn, q(by="campaign", model="first", lookback_days=2))
    }
    # A's lead (6 Mar) sees only n1 (5 Mar); B's lead (7 Mar) none in 2 days: B's first visit's campaign, a2
    assert (rows["n1"]["leads"], rows["a2"]["leads"], rows["a1"]["leads"] if "a1" in rows else 0) == (1, 1, 0)
    # A becoming a customer (10 Mar) has no arrival in 2 days: A's first visit's campaign, a1
    assert rows["a1"]["customers"] == 1


async def same_as_raw(conn: asyncpg.Connection) -> None:
    raw = await conn.fetch(f"SELECT * FROM ({queries.RAW_ARRIVALS}) AS r")  # noqa: S608
    kept = await conn.fetch("SELECT * FROM marketing_arrivals")
    assert sorted(map(tuple, kept)) == sorted(map(tuple, raw))
    for lookback in (2, *reports.KEPT_LOOKBACKS):
        for model in reports.MODELS:
            for by in reports.FUNNEL_GROUPS:
                query = q(model=model, by=by, lookback_days=lookback)
                assert await reports.funnel(conn, query) == await reports.funnel(conn, query, naive=True), (
                    model,
                    by,
                )


async def test_arrivals_equal_the_raw_computation_after_a_replay_a_merge_and_an_erasure(
    crm_conn: asyncpg.Connection,
) -> None:
    m = await seed(crm_conn)
    search = hit(m.c, "page_view", at(12), referrer_class="search")
    inside = hit(m.c, "page_view", at(12, 11), referrer_class="internal")
    await write_batch(crm_conn, [search, inside], now=at(12))
    assert await crm_conn.fetchval("SELECT count(*) FROM marketing_arrivals WHERE person_id = $1", m.c) == 1
    await same_as_raw(crm_conn)
    stored = await crm_conn.fetch("SELECT event FROM touchpoints")
    assert await write_touches(crm_conn, [Touch.parse(r["event"].encode()) for r in stored], now=at(25)) == 0
    await same_as_raw(crm_conn)
    early = new_id()
    await write_batch(crm_conn, [click(early, "news", "n1", at(1, 9))], now=at(1, 9))
    await write_batch(crm_conn, [form(early, "early@example.com", "AT", at(9))], now=at(9))
    await merge(crm_conn, m.c, early, 26)
    await same_as_raw(crm_conn)
    await erase(crm_conn, m.a, 27)
    await same_as_raw(crm_conn)


async def test_the_api_takes_the_model_for_the_funnel(
    client: TestClient, auth_headers: dict[str, dict[str, str]]
) -> None:
    async with client.server.app[POOL].acquire() as conn:
        await seed(conn)
    url = "/api/v1/reports/funnel?from=2026-03-01&to=2026-03-31&by=source"
    first = await (await client.get(url + "&model=first", headers=auth_headers["marketing"])).json()
    last = await (await client.get(url + "&model=last&lookback=30", headers=auth_headers["marketing"])).json()
    assert (first["model"], first["lookback_days"], last["model"]) == ("first", 30, "last")
    assert {r["source"]: r["leads"] for r in first["rows"]}["blog"] == 2
    assert {r["source"]: r["leads"] for r in last["rows"]}["news"] == 2
    bad = await client.get(url + "&lookback=0", headers=auth_headers["marketing"])
    assert bad.status == 422
