"""The sales API: companies (and linking people to them by hand), pipelines, deals with their stage history, tasks,
teams and assignment rules, and sales volume."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aiohttp import web

from leadline_crm.http.auth import READ_ROLES, REPS, SALES
from leadline_crm.http.crud import operations as crud_operations
from leadline_crm.http.errors import BadRequest
from leadline_crm.http.keys import BODY, CALLER, POOL
from leadline_crm.http.openapi import Operation, Param
from leadline_crm.http.params import CURSOR, LIMIT, page_limit, uuid_param
from leadline_crm.http.responses import json_response
from leadline_crm.http.schemas import DATE, UUID_S
from leadline_crm.sales import companies, deals, listing, purchases, queries, records, targets
from leadline_crm.sales.volume import volume

ID = Param("id", "path", UUID_S, "the record")
PERIODS = ("day", "week", "month")


async def list_pipelines(request: web.Request) -> web.Response:
    """GET /api/v1/pipelines: every pipeline with its stages in order."""
    pool = request.app[POOL]
    stages: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for s in await pool.fetch(queries.STAGES):
        stages.setdefault(s["pipeline_id"], []).append(
            {k: s[k] for k in ("id", "name", "position", "probability", "kind")}
        )
    items = [dict(p) | {"stages": stages.get(p["id"], [])} for p in await pool.fetch(queries.PIPELINES)]
    return json_response({"items": items, "next": None})


async def post_pipeline(request: web.Request) -> web.Response:
    """POST /api/v1/pipelines."""
    pid = await deals.create_pipeline(request.app[POOL], request[BODY], request[CALLER])
    stages = [dict(r) for r in await request.app[POOL].fetch(queries.STAGES_OF, pid)]
    return json_response({"id": pid, "name": request[BODY]["name"], "stages": stages}, status=201)


async def list_deals(request: web.Request) -> web.Response:
    """GET /api/v1/deals: the deal table's filters (pipeline, stage, owner, status, q, close dates), paged."""
    size = page_limit(request)
    params = dict(request.query)
    if cursor := params.pop("cursor", None):  # the page number the previous page's ``next`` gave
        params["page"] = cursor
    query = listing.DealQuery.parse(params)
    rows, more = await listing.page_of(request.app[POOL], query, request[CALLER].user_id, size)
    nxt = str(query.page + 1) if more else None
    return json_response({"items": [dict(r) for r in rows], "next": nxt})


async def get_deal(request: web.Request) -> web.Response:
    """GET /api/v1/deals/{id}, with its stage history and (a won deal) its purchases."""
    pool = request.app[POOL]
    row = await pool.fetchrow(queries.DEAL, uuid_param(request))
    if row is None:
        raise web.HTTPNotFound(text="no such deal")
    history = [dict(h) for h in await pool.fetch(queries.HISTORY, row["id"])]
    bought = [dict(p) for p in await purchases.of_deal(pool, row["id"])]
    return json_response(dict(row) | {"history": history, "purchases": bought})


async def post_deal(request: web.Request) -> web.Response:
    """POST /api/v1/deals."""
    row = await deals.create_deal(request.app[POOL], request[BODY], request[CALLER])
    return json_response(dict(row), status=201)


async def patch_deal(request: web.Request) -> web.Response:
    """PATCH /api/v1/deals/{id}: facts, or a stage move (by id or name; a reason, required to lose)."""
    row = await deals.change_deal(request.app[POOL], uuid_param(request), request[BODY], request[CALLER])
    return json_response(dict(row))


async def company_people(request: web.Request) -> web.Response:
    """GET /api/v1/companies/{id}/people: the people linked to a company, and how (by domain or by hand)."""
    company = uuid_param(request)
    pool = request.app[POOL]
    if not await pool.fetchval("SELECT EXISTS (SELECT 1 FROM companies WHERE id = $1)", company):
        raise web.HTTPNotFound(text="no such company")
    rows = await pool.fetch(queries.COMPANY_PEOPLE, company)
    return json_response({"items": [dict(r) for r in rows], "next": None})


async def link_person(request: web.Request) -> web.Response:
    """POST /api/v1/companies/{id}/people: link a person to this company by hand (a domain never undoes it)."""
    company = uuid_param(request)
    person = uuid.UUID(request[BODY]["person_id"])
    await companies.set_company(request.app[POOL], person, company, request[CALLER])
    return json_response({"person_id": person, "company_id": company}, status=201)


async def unlink_person(request: web.Request) -> web.Response:
    """DELETE /api/v1/companies/{id}/people/{person_id}."""
    company = uuid_param(request)
    person = uuid_param(request, "person_id")
    pool = request.app[POOL]
    if await pool.fetchval("SELECT company_id FROM persons WHERE person_id = $1", person) != company:
        raise web.HTTPNotFound(text="this person is not linked to this company")
    await companies.set_company(pool, person, None, request[CALLER])
    return web.Response(status=204)


def _day(request: web.Request, name: str, default: date) -> date:
    raw = request.query.get(name)
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name}: a date (YYYY-MM-DD)") from None


async def get_volume(request: web.Request) -> web.Response:
    """GET /api/v1/sales/volume?since=&until=&period=day|week|month."""
    today = datetime.now(UTC).date()
    since = _day(request, "since", today.replace(day=1))
    until = _day(request, "until", today + timedelta(days=1))
    period = request.query.get("period", "month")
    if period not in PERIODS:
        raise BadRequest(f"period: one of {', '.join(PERIODS)}")
    rows = await volume(request.app[POOL], since, until, period)
    return json_response({"items": [dict(r) for r in rows], "next": None})


async def get_weighted(request: web.Request) -> web.Response:
    """GET /api/v1/pipelines/{id}/value: open deals' value per stage, and weighted by its win probability."""
    pipeline = uuid_param(request)
    pool = request.app[POOL]
    if not await pool.fetchval("SELECT EXISTS (SELECT 1 FROM pipelines WHERE id = $1)", pipeline):
        raise web.HTTPNotFound(text="no such pipeline")
    rows = [dict(r) for r in await pool.fetch(queries.WEIGHTED, pipeline)]
    return json_response({"items": rows, "next": None})


async def put_target(request: web.Request) -> web.Response:
    """PUT /api/v1/sales/targets: set a rep's target for a month (replacing one set before)."""
    row = await targets.set_target(request.app[POOL], request[BODY], request[CALLER])
    return json_response(dict(row) | {"month": row["month"].isoformat()[:7]})


async def get_targets(request: web.Request) -> web.Response:
    """GET /api/v1/sales/targets?month=YYYY-MM: each rep's target beside the deals they won that month."""
    month = targets.month_of(request.query.get("month"))
    rows = await targets.won_vs_target(request.app[POOL], month)
    return json_response({"month": month.isoformat()[:7], "items": [dict(r) for r in rows], "next": None})


LINK_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["person_id"],
    "properties": {"person_id": UUID_S},
}


def operations() -> list[Operation]:
    """The sales API."""
    deal_filters = (
        Param("pipeline", "query", UUID_S, "only this pipeline's deals"),
        Param("stage", "query", UUID_S, "only deals in this stage"),
        Param("owner", "query", {"type": "string"}, "a user id, me or none"),
        Param("status", "query", {"enum": list(listing.STATUSES)}, "open, won or lost"),
        Param("q", "query", {"type": "string", "maxLength": 200}, "text in the title"),
        Param("close_from", "query", DATE, "expected to close on or after"),
        Param("close_to", "query", DATE, "expected to close on or before"),
        Param("person", "query", UUID_S, "the person's deals"),
        Param("company", "query", UUID_S, "the company's deals"),
        Param("sort", "query", {"enum": list(listing.SORTS)}, "order"),
        LIMIT,
        CURSOR,
    )
    return [
        *crud_operations(records.COMPANIES),
        Operation("GET", "/api/v1/companies/{id}/people", company_people,
                  "The people of a company (at most 200), linked by email domain or by hand", READ_ROLES,
                  "companies", params=(ID,)),
        Operation("POST", "/api/v1/companies/{id}/people", link_person, "Link a person to a company by hand",
                  REPS, "companies", params=(ID,), body=LINK_BODY, status=201),
        Operation("DELETE", "/api/v1/companies/{id}/people/{person_id}", unlink_person,
                  "Unlink a person from a company", REPS, "companies",
                  params=(ID, Param("person_id", "path", UUID_S, "the person")), status=204),
        Operation("GET", "/api/v1/pipelines", list_pipelines, "List pipelines with their stages", READ_ROLES,
                  "pipelines"),
        Operation("POST", "/api/v1/pipelines", post_pipeline, "Create a pipeline with its stages",
                  frozenset({"admin"}), "pipelines", body=deals.PIPELINE_BODY, status=201),
        Operation("GET", "/api/v1/pipelines/{id}/value", get_weighted,
                  "Open deals' value by stage, weighted by win probability", READ_ROLES, "pipelines", params=(ID,)),
        Operation("GET", "/api/v1/deals", list_deals, "List deals", READ_ROLES, "deals", params=deal_filters),
        Operation("POST", "/api/v1/deals", post_deal, "Create a deal (422 for an unknown pipeline or stage)",
                  SALES, "deals", body=deals.CREATE_BODY, status=201),
        Operation("GET", "/api/v1/deals/{id}", get_deal, "Get a deal with its stage history", READ_ROLES, "deals",
                  params=(ID,)),
        Operation("PATCH", "/api/v1/deals/{id}", patch_deal,
                  "Change a deal or move it to another stage (422 for an unknown pipeline or stage)", SALES,
                  "deals", params=(ID,), body=deals.PATCH_BODY),
        *crud_operations(records.TASKS),
        *crud_operations(records.TEAMS),
        *crud_operations(records.TEAM_MEMBERS),
        *crud_operations(records.ASSIGNMENT_RULES),
        Operation("GET", "/api/v1/sales/volume", get_volume,
                  "Sales volume per rep and period: deals won and value, purchases and revenue, activities",
                  READ_ROLES, "sales volume",
                  params=(Param("since", "query", DATE, "from (default: the month's first day)"),
                          Param("until", "query", DATE, "to, exclusive (default: tomorrow)"),
                          Param("period", "query", {"enum": list(PERIODS)}, "day, week or month"))),
        Operation("GET", "/api/v1/sales/targets", get_targets,
                  "Won versus target per rep for a month: each rep's target and the deals they won", READ_ROLES,
                  "sales volume", params=(Param("month", "query", {"type": "string"}, "YYYY-MM (default: this month)"),)),
        Operation("PUT", "/api/v1/sales/targets", put_target, "Set a rep's target for a month", frozenset({"admin"}),
                  "sales volume", body=targets.BODY),
    ]  # fmt: skip
