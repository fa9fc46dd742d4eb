"""The reports API: ``GET /api/v1/reports/{ads,affiliates,products,demographics,funnel}``, JSON or, with
``?format=csv``, the same rows as CSV."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from leadline_crm.http.auth import MARKETING
from leadline_crm.http.keys import POOL
from leadline_crm.http.openapi import Handler, Operation, Param
from leadline_crm.http.responses import json_response
from leadline_crm.marketing import reports

COMMON = (
    Param("from", "query", {"type": "string", "format": "date"}, "first day (default: 30 days before `to`)"),
    Param("to", "query", {"type": "string", "format": "date"}, "last day, included (default: today, UTC)"),
    Param("format", "query", {"type": "string", "enum": ["json", "csv"]}, "csv: the same rows as CSV"),
)
ATTRIBUTION = (
    Param("model", "query", {"type": "string", "enum": list(reports.MODELS)}, "attribution model (position)"),
    Param("lookback", "query", {"type": "integer", "minimum": 1, "maximum": 365}, "days before a conversion"),
)


def by(choices: tuple[str, ...]) -> Param:
    return Param("by", "query", {"type": "string", "enum": list(choices)}, f"grouping (default {choices[0]})")


def handler(report: str) -> Handler:
    async def answer(request: web.Request) -> web.StreamResponse:
        query = reports.Query.parse(request.query)
        async with request.app[POOL].acquire() as conn:
            rows = await reports.compute(conn, report, query)
        if request.query.get("format") == "csv":
            name = f"{report}-{query.start}-{query.end}.csv"
            return web.Response(
                text=reports.to_csv(rows),
                content_type="text/csv",
                headers={"Content-Disposition": f'attachment; filename="{name}"'},
            )
        doc: dict[str, Any] = {"report": report, "from": query.start.isoformat(), "to": query.end.isoformat()}
        if report in ("ads", "affiliates"):
            doc |= {"model": query.model, "lookback_days": query.lookback_days}
        return json_response(doc | {"rows": rows})

    answer.__name__ = f"report_{report}"
    return answer


def operations() -> list[Operation]:
    """The reports API (roles admin and marketing)."""
    spec: list[tuple[str, str, tuple[Param, ...]]] = [
        (
            "ads",
            "Clicks, leads, customers, conversion rate and revenue by ad, campaign or affiliate",
            (*ATTRIBUTION, by(reports.AD_GROUPS)),
        ),
        (
            "affiliates",
            "Affiliates ranked by clicks from prospects, with leads, customers and revenue",
            ATTRIBUTION,
        ),
        (
            "products",
            "Units, revenue and price paid against list price by product, period or sales rep",
            (
                by(reports.PRODUCT_GROUPS),
                Param(
                    "period",
                    "query",
                    {"type": "string", "enum": list(reports.PERIODS)},
                    "period unit (month)",
                ),
                Param("product_id", "query", {"type": "string", "format": "uuid"}, "only this product"),
                Param("sales_rep", "query", {"type": "string", "format": "uuid"}, "only this rep's sales"),
            ),
        ),
        (
            "demographics",
            "Leads and customers by country, region, age band, gender, industry or company size",
            (by(reports.DIMENSIONS),),
        ),
        (
            "funnel",
            "Visitors, leads, prospects, customers, the rates and median days between stages",
            (by(reports.FUNNEL_GROUPS),),
        ),
    ]
    return [
        Operation(
            "GET",
            f"/api/v1/reports/{name}",
            handler(name),
            summary,
            MARKETING,
            "reports",
            params=(*COMMON, *params),
        )
        for name, summary, params in spec
    ]
