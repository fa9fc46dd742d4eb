"""Marketing reports honour a refused analytics consent (migration 0065): the person's conversions are credited to
no ad, e-mail or source, demographics and next-product suggestions leave them out, while counts of events (clicks,
opens, visitors) and the funnel's totals keep them; granting again brings them back; the kept rollups equal the
raw computation throughout; an agent's refusal through the API empties the person's suggestions."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import asyncpg
import orjson
import pytest
from aiohttp.test_utils import TestClient

from crm_core.marketing.dataset import add_second_product, newsletter, seed
from leadline_crm.http.keys import POOL
from leadline_crm.marketing import reports

pytestmark = pytest.mark.integration

MARCH = reports.Query(date(2026, 3, 1), date(2026, 3, 31))


def q(**kw: Any) -> reports.Query:
    return reports.Query(**{"start": MARCH.start, "end": MARCH.end, **kw})


async def say(conn: asyncpg.Connection, person: str, granted: bool) -> None:
    """The person's analytics consent as people/consent.py records it."""
    statement = {"analytics": {"granted": granted, "at": "2026-03-28T10:00:00+00:00", "source": "agent"}}
    await conn.execute(
        "UPDATE persons SET consent = consent || $2::text::jsonb WHERE person_id = $1",
        person,
        orjson.dumps(statement).decode(),
    )


async def figures(conn: asyncpg.Connection) -> dict[str, Any]:
    ads = {r["ad_id"]: (r["clicks"], r["leads"], r["customers"], r["revenue"]) for r in
           await reports.ads(conn, q(model="first"))}  # fmt: skip
    [mails] = await reports.emails(conn, q(model="first"))
    sources = {r["source"]: (r["visitors"], r["leads"], r["customers"]) for r in
               await reports.funnel(conn, q(by="source", model="first"))}  # fmt: skip
    [total] = await reports.funnel(conn, MARCH)
    countries = await reports.demographics(conn, q(by="country"))
    return {"ads": ads, "emails": (mails["clicks"], mails["leads"], mails["revenue"]), "sources": sources,
            "total": (total["leads"], total["customers"]), "countries": countries}  # fmt: skip


async def same_as_raw(conn: asyncpg.Connection) -> None:
    for lookback in (*reports.KEPT_LOOKBACKS, 12):
        for model in reports.MODELS:
            for report, by in (("ads", "ad"), ("affiliates", ""), ("emails", "send"), ("funnel", "campaign")):
                query = q(model=model, lookback_days=lookback, by=by)
                assert await reports.compute(conn, report, query) == await reports.compute(
                    conn, report, query, naive=True
                ), (report, model, lookback)
    assert await reports.compute(conn, "demographics", q()) == await reports.compute(
        conn, "demographics", q(), naive=True
    )


async def test_a_refused_analytics_consent_leaves_the_person_out_of_attribution_and_profiles(
    crm_conn: asyncpg.Connection,
) -> None:
    m = await seed(crm_conn)
    await newsletter(crm_conn, m)
    before = await figures(crm_conn)
    # first click: A's lead, customer and purchase (2 x 90) go to a1, B's lead to a2 (test_reports.py CREDIT)
    assert before["ads"] == {"a1": (2, 1, 1, 180), "a2": (1, 1, 0, 0), "n1": (2, 0, 0, 0)}
    assert before["emails"] == (1, 1, 180)
    assert before["sources"] == {"blog": (2, 2, 1), "news": (0, 0, 0), "form": (1, 1, 1)}
    assert before["countries"] == [{"country": "DE", "leads": 1, "customers": 1}, {"country": "FR", "leads": 0,
                                                                                    "customers": 1}]  # fmt: skip

    await say(crm_conn, m.a, granted=False)
    after = await figures(crm_conn)
    # A's clicks still count; nothing of A's is credited to them
    assert after["ads"] == {"a1": (2, 0, 0, 0), "a2": (1, 1, 0, 0), "n1": (2, 0, 0, 0)}
    assert after["emails"] == (1, 0, 0)
    # A's first visit still counts as a visitor of the blog, and A in the funnel's totals, not in its sources
    assert after["sources"] == {"blog": (2, 1, 0), "news": (0, 0, 0), "form": (1, 1, 1)}
    assert after["total"] == before["total"] == (3, 2)
    assert after["countries"] == [{"country": "FR", "leads": 0, "customers": 1}, {"country": "DE", "leads": 1,
                                                                                   "customers": 0}]  # fmt: skip
    await same_as_raw(crm_conn)

    await say(crm_conn, m.a, granted=True)  # granted again: as before
    assert await figures(crm_conn) == before
    await same_as_raw(crm_conn)


async def test_an_agent_refusing_analytics_empties_the_persons_suggestions(
    client: TestClient, auth_headers: dict[str, dict[str, str]]
) -> None:
    async with client.server.app[POOL].acquire() as conn:
        m = await seed(conn)
        await add_second_product(conn, m)
    url = f"/api/v1/persons/{m.b}/suggestions?to=2026-03-31"
    suggested = await (await client.get(url, headers=auth_headers["sales"])).json()
    assert [s["sku"] for s in suggested["suggestions"]] == ["W2"]
    resp = await client.put(
        f"/api/v1/persons/{m.b}/consent", json={"analytics": False}, headers=auth_headers["sales"]
    )
    assert resp.status == 200, await resp.text()
    assert (await (await client.get(url, headers=auth_headers["sales"])).json())["suggestions"] == []
    async with client.server.app[POOL].acquire() as conn:
        assert await reports.suggestions(conn, uuid.UUID(m.b), MARCH) == []
        # B's purchase still counts in what is bought together: the pair counts say nothing of a person
        rows = {(r["product"], r["also_bought"]) for r in await reports.cross_sell(conn, MARCH)}
        assert ("W1", "W2") in rows
