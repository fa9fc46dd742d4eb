"""The people pages of the web app under /app: the person list, a person's page (facts, stage moves, rep
activities, the timeline), the lead form. They use the same functions as the REST API (search, timeline, stage
moves, lead entry), so the rules (roles, duplicate check, stage log) are the same.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qsl

import asyncpg
from aiohttp import web

from leadline_crm import lifecycle
from leadline_crm.http.auth import Caller
from leadline_crm.http.errors import BadRequest, Conflict
from leadline_crm.http.keys import POOL
from leadline_crm.http.listing import filtered_page, list_csv
from leadline_crm.http.pages import forbidden, may, signed_in
from leadline_crm.http.templating import render
from leadline_crm.people import home, listing, person_page, persons, queries

PAGE = 50


def display_name(row: asyncpg.Record) -> str:
    return " ".join(filter(None, (row["first_name"], row["last_name"]))) or "(anonymous)"


def user_key(caller: Caller) -> str:
    """Whose saved filters: the user, or the API token a session stands for."""
    return caller.label


async def person_list(request: web.Request) -> web.Response:
    """GET /app/people: known people (visitors behind a filter), searched, filtered, sorted and paged."""
    caller = await signed_in(request)
    pool = request.app[POOL]
    query, rows, more, message = await filtered_page(
        request.query,
        listing.PersonQuery.parse,
        listing.PersonQuery,
        lambda q: listing.page_of(pool, q, caller.user_id),
    )
    users = await pool.fetch(queries.USERS)
    owners = [("", "anyone"), ("me", "me"), ("none", "nobody"), *((str(u["id"]), u["name"]) for u in users)]
    return render(
        request, "people/list.html", status=422 if message else 200, title="People", message=message,
        query=query, q_max=persons.Q_MAX, stage_options=[("", "any"), *((s, s) for s in lifecycle.STAGES)],
        owner_options=owners, rows=[dict(r) | {"name": display_name(r)} for r in rows], more=more,
        saved=await pool.fetch(queries.SAVED_FILTERS, user_key(caller)),
    )  # fmt: skip


async def person_csv(request: web.Request) -> web.StreamResponse:
    """GET /app/people.csv: the current list, every page of it, as CSV."""
    caller = await signed_in(request)
    return await list_csv(request, "people.csv", lambda q: listing.export_csv(
        request.app[POOL], listing.PersonQuery.parse(q), caller.user_id))  # fmt: skip


async def save_filter(request: web.Request) -> web.Response:
    """POST /app/people/filters: keep the current list's filters under a name."""
    caller = await signed_in(request)
    form = await request.post()
    name = str(form.get("name", "")).replace("\x00", "").strip()[:100]
    query = str(form.get("query", "")).replace("\x00", "")[:2000]
    if not name:
        raise web.HTTPUnprocessableEntity(reason="Give the filter a name")
    try:
        listing.PersonQuery.parse(dict(parse_qsl(query)))  # only a query the list accepts is kept
    except BadRequest as exc:
        raise web.HTTPUnprocessableEntity(reason=f"That filter cannot be saved: {exc}") from None
    await request.app[POOL].execute(queries.SAVE_FILTER, user_key(caller), name, query)
    raise web.HTTPSeeOther("/app/people?" + query)


async def delete_filter(request: web.Request) -> web.Response:
    """POST /app/people/filters/{id}/delete: only one's own."""
    caller = await signed_in(request)
    try:
        fid = uuid.UUID(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound from None
    await request.app[POOL].execute(queries.DELETE_FILTER, fid, user_key(caller))
    raise web.HTTPSeeOther("/app/people")


LEAD_FIELDS = (("email", "Email"), ("phone", "Phone (+country code)"), ("first_name", "First name"),
               ("last_name", "Last name"), ("company", "Company"))  # fmt: skip


def _lead_form(
    request: web.Request,
    values: dict[str, str],
    message: str | None = None,
    existing: str | None = None,
    status: int = 200,
) -> web.Response:
    return render(
        request, "people/lead_form.html", status=status, title="New lead", fields=LEAD_FIELDS, values=values,
        message=message, existing=existing,
    )  # fmt: skip


async def new_lead(request: web.Request) -> web.Response:
    """GET /app/leads/new."""
    caller = await signed_in(request)
    if not may(caller, persons.LEAD_WRITERS):
        return forbidden(request)
    return _lead_form(request, {})


async def create_lead(request: web.Request) -> web.Response:
    """POST /app/leads: the same duplicate check as the API; a duplicate links to the existing person."""
    caller = await signed_in(request)
    if not may(caller, persons.LEAD_WRITERS):
        return forbidden(request)
    form = await request.post()
    values = {key: str(form.get(key, "")).strip()[:200] for key, _ in LEAD_FIELDS}
    body: dict[str, Any] = {k: v for k, v in values.items() if v}
    body["force"] = form.get("force") == "1"
    try:
        if body.get("email") and "@" not in body["email"]:
            raise BadRequest("email: that is not an email address")
        row = await persons.enter_lead(request.app[POOL], body, caller, request.app[persons.PHONE_REGION])
    except Conflict as exc:
        return _lead_form(request, values, str(exc), exc.extra.get("existing_person_id"), 409)
    except BadRequest as exc:
        return _lead_form(request, values, str(exc), status=422)
    raise web.HTTPSeeOther(f"/app/persons/{row['id']}")


def pages() -> list[web.AbstractRouteDef]:
    """The people pages."""
    return [
        web.get("/app", home.home),
        web.get("/app/people", person_list),
        web.get("/app/people.csv", person_csv),
        web.post("/app/people/filters", save_filter),
        web.post("/app/people/filters/{id}/delete", delete_filter),
        *person_page.pages(),
        web.get("/app/leads/new", new_lead),
        web.post("/app/leads", create_lead),
    ]
