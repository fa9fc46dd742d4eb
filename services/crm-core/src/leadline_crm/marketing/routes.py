"""The reports API: ``GET /api/v1/reports/{name}`` for each of reports.REPORTS, JSON or, with ``?format=csv``, the
same rows as CSV; and a person's next-product suggestions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web

from leadline_crm.http.auth import MARKETING, READ_ROLES
from leadline_crm.http.keys import POOL
from leadline_crm.http.openapi import Handler, Operation, Param
from leadline_crm.http.params import uuid_param
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

SEND_PAGE = (
    Param(
        "limit",
        "query",
        {"type": "integer", "minimum": 1, "maximum": reports.MAX_SEND_PAGE},
        f"by send: sends per page ({reports.SEND_PAGE}); the answer's total counts them all",
    ),
    Param(
        "offset", "query", {"type": "integer", "minimum": 0}, "by send: sends left out before the page (0)"
    ),
)


def by(choices: tuple[str, ...]) -> Param:
    return Param("by", "query", {"type": "string", "enum": list(choices)}, f"grouping (default {choices[0]})")


LONG = {"cross-sell": 365}  # days before `to` by default, where 30 would hold too few baskets


def parse(request: web.Request, report: str) -> reports.Query:
    params = dict(request.query)
    if report in LONG and "from" not in params:
        end = reports.Query.parse(params).end
        params["from"] = (end - timedelta(days=LONG[report] - 1)).isoformat()
    return reports.Query.parse(params)


def handler(report: str) -> Handler:
    async def answer(request: web.Request) -> web.StreamResponse:
        query = parse(request, report)
        meta: dict[str, Any] = {}
        async with request.app[POOL].acquire() as conn:
            if report == "forecast":
                async with reports.custom_plans(conn):
                    rows, meta = await reports.weekly_forecast(conn, query)
            elif report == "emails" and query.by == "send":
                rows, total = await reports.email_page(conn, query)
                meta = {"total": total, "limit": query.limit, "offset": query.offset}
            else:
                rows = await reports.compute(conn, report, query)
        if request.query.get("format") == "csv":
            name = f"{report}-{query.start}-{query.end}.csv"
            return web.Response(
                text=reports.to_csv(rows),
                content_type="text/csv",
                headers={"Content-Disposition": f'attachment; filename="{name}"'},
            )
        doc: dict[str, Any] = {"report": report, "from": query.start.isoformat(), "to": query.end.isoformat()}
        if report in ("ads", "affiliates", "emails", "funnel"):
            doc |= {"model": query.model, "lookback_days": query.lookback_days}
        return json_response(doc | meta | {"rows": rows})

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
            "emails",
            "Sends, real opens, clicks, click-through, leads and revenue per campaign, per mailing or per send",
            (*ATTRIBUTION, by(reports.EMAIL_GROUPS), *SEND_PAGE),
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
            "Leads and customers by country, region, age band, gender, industry, company size or device",
            (by(reports.DIMENSIONS),),
        ),
        (
            "forecast",
            "The next 8 weeks of new leads and revenue with an 80 % interval, and the method's back-test error",
            (),
        ),
        (
            "cross-sell",
            "Products bought together: support, confidence, lift (default range: a year)",
            (),
        ),
        (
            "funnel",
            "Visitors, leads, prospects, customers (credited to sources or campaigns by the model), the rates and"
            " median days between stages",
            (*ATTRIBUTION, by(reports.FUNNEL_GROUPS)),
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
    ] + [
        Operation(
            "GET",
            "/api/v1/persons/{id}/suggestions",
            suggest,
            "Next products for a customer, from what buyers of their products also bought (a year back)",
            READ_ROLES,
            "reports",
            params=(Param("id", "path", {"type": "string", "format": "uuid"}, "the person"),),
        )
    ]


async def suggest(request: web.Request) -> web.StreamResponse:
    person = uuid_param(request)
    query = parse(request, "cross-sell")
    async with request.app[POOL].acquire() as conn:
        rows = await reports.suggestions(conn, person, query)
    return json_response({"person_id": str(person), "suggestions": rows})
