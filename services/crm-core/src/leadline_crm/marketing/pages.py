"""The marketing dashboard under /app/marketing (roles admin and marketing): ads, affiliates and e-mail campaigns
as ranked bars, the funnel (and its stages by source, credited by the attribution model), leads and customers by
device, the price paid per product against its list price, with the date range and the attribution model as
controls, and each report as CSV (the API's rows, under /app so the session is enough); and the next-product
suggestions the person page loads into itself."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from leadline_crm.http.auth import MARKETING
from leadline_crm.http.keys import POOL
from leadline_crm.http.pages import forbidden, may, signed_in
from leadline_crm.http.templating import render
from leadline_crm.marketing import reports

RANKED = 10  # bars per ranked chart


def _bars(rows: list[dict[str, Any]], label: str, field: str) -> dict[str, Any]:
    """The first rows (ranked already) as bars of one figure, from zero."""
    top = rows[:RANKED]
    return {
        "type": "bar",
        "zero": True,
        "labels": [str(r[label]) for r in top],
        "series": [{"label": field.replace("_", " "), "values": [float(r[field]) for r in top]}],
    }


def _prices(products: list[dict[str, Any]]) -> dict[str, Any]:
    """Per product: the band from the lowest to the highest unit price paid, the median and average paid and the
    list price as dots."""
    top = products[:RANKED]
    names = ("price_max", "price_min", "price_median", "price_avg", "list_price")
    return {
        "type": "line",
        "zero": True,
        "labels": [r["product"] for r in top],
        "series": [
            {"label": name.replace("_", " "), "values": [float(r[name]) for r in top], "style": "points"}
            for name in names
        ],
        "bands": [[0, 1]],
    }


def _forecast(rows: list[dict[str, Any]], field: str) -> dict[str, Any]:
    """The weeks so far and the forecast's line with its interval as a band."""
    ahead = [r["kind"] == "forecast" for r in rows]
    return {
        "type": "line",
        "zero": True,
        "labels": [r["week"] for r in rows],
        "series": [
            {
                "label": "actual",
                "values": [None if a else r[field] for r, a in zip(rows, ahead, strict=True)],
            },
            {
                "label": "forecast",
                "values": [r[field] if a else None for r, a in zip(rows, ahead, strict=True)],
            },
            {"label": "80 % high", "values": [r[f"{field}_high"] for r in rows]},
            {"label": "80 % low", "values": [r[f"{field}_low"] for r in rows]},
        ],
        "bands": [[2, 3]],
    }


async def dashboard(request: web.Request) -> web.Response:
    """GET /app/marketing."""
    caller = await signed_in(request)
    if not may(caller, MARKETING):
        return forbidden(request)
    query = reports.Query.parse(request.query)
    async with request.app[POOL].acquire() as conn, reports.custom_plans(conn):
        ads = await reports.ads(conn, query)
        affiliates = await reports.affiliates(conn, query)
        emails = await reports.emails(conn, query)
        devices = await reports.demographics(conn, reports.Query(query.start, query.end, by="device"))
        funnel = await reports.funnel(conn, query)
        sources = await reports.funnel(conn, replace(query, by="source"))
        products = await reports.products(conn, query)
        weekly, forecast = await reports.weekly_forecast(conn, query)
    params = {"from": query.start.isoformat(), "to": query.end.isoformat(), "model": query.model,
              "lookback": str(query.lookback_days)}  # fmt: skip
    stages = ("visitors", "leads", "prospects", "customers")
    return render(
        request,
        "marketing/dashboard.html",
        title="Marketing",
        query=query,
        models=[(m, m) for m in reports.MODELS],
        ads=ads,
        affiliates=affiliates,
        emails=emails,
        devices=devices,
        emails_chart=_bars(sorted(emails, key=lambda r: -r["clicks"]), "campaign", "clicks"),
        funnel=funnel[0] if funnel else dict.fromkeys(stages, 0),
        sources=sources,
        products=products,
        ads_chart=_bars(sorted(ads, key=lambda r: -r["clicks"]), "name", "clicks"),
        affiliates_chart=_bars(affiliates, "name", "prospect_clicks"),
        funnel_chart={
            "type": "bar",
            "zero": True,
            "labels": list(stages),
            "series": [
                {"label": "persons", "values": [float(funnel[0][s]) if funnel else 0 for s in stages]}
            ],
        },
        prices_chart=_prices(products),
        leads_chart=_forecast(weekly, "leads"),
        revenue_chart=_forecast(weekly, "revenue"),
        forecast=forecast,
        csv={name: f"/app/marketing/{name}.csv?{urlencode(params)}" for name in reports.REPORTS},
    )


async def download(request: web.Request) -> web.StreamResponse:
    """GET /app/marketing/{report}.csv: a report's rows as CSV, as the API gives them."""
    caller = await signed_in(request)
    if not may(caller, MARKETING):
        return forbidden(request)
    report = request.match_info["report"]
    if report not in reports.REPORTS:
        raise web.HTTPNotFound(text="no such report")
    query = reports.Query.parse(request.query)
    async with request.app[POOL].acquire() as conn:
        rows = await reports.compute(conn, report, query)
    name = f"{report}-{query.start}-{query.end}.csv"
    return web.Response(
        text=reports.to_csv(rows),
        content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def person_suggestions(request: web.Request) -> web.Response:
    """GET /app/persons/{id}/suggestions: the person's next products from the last year's baskets, as the part of
    the person page it loads (marketing/_person_suggestions.html); every signed-in role, as the API."""
    await signed_in(request)
    try:
        person = uuid.UUID(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound(text="No such person") from None
    end = datetime.now(UTC).date()
    query = reports.Query(end - timedelta(days=364), end)
    async with request.app[POOL].acquire() as conn:
        rows = await reports.suggestions(conn, person, query)
    return render(request, "marketing/_suggestions.html", suggestions=rows)


def pages() -> list[web.AbstractRouteDef]:
    """The marketing pages."""
    return [
        web.get("/app/marketing", dashboard),
        web.get("/app/marketing/{report}.csv", download),
        web.get("/app/persons/{id}/suggestions", person_suggestions),
    ]
