"""The people pages of the web app under /app: the person list, a person's page (facts, stage moves, rep
activities, the timeline), the lead form. They use the same functions as the REST API (search, timeline, stage
moves, lead entry), so the rules (roles, duplicate check, stage log) are the same.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import asyncpg
from aiohttp import web

from leadline_crm import lifecycle
from leadline_crm.http.auth import REPS
from leadline_crm.http.errors import BadRequest, Conflict
from leadline_crm.http.keys import POOL
from leadline_crm.http.pages import forbidden, may, signed_in
from leadline_crm.http.params import decode_cursor, encode_cursor
from leadline_crm.http.templating import render
from leadline_crm.people import persons, queries, records

PAGE = 50


def display_name(row: asyncpg.Record) -> str:
    return " ".join(filter(None, (row["first_name"], row["last_name"]))) or "(anonymous)"


async def person_list(request: web.Request) -> web.Response:
    """GET /app/people: find persons by text, email or stage."""
    await signed_in(request)
    q = request.query.get("q", "").strip()
    stage = request.query.get("stage", "")
    everyone = request.query.get("include_anonymous") == "true"
    message = None
    rows: list[asyncpg.Record] = []
    after = None
    try:
        if stage and stage not in lifecycle.STAGES:
            raise BadRequest("unknown stage")
        after = persons.read_person_cursor(request.query.get("cursor"))
        email = persons.normalize_email(q) if "@" in q else None
        pattern = None if email else persons.search_pattern(q)
        if "\x00" in q:
            raise BadRequest("text must not contain NUL characters")
        filters = (email, None, stage or None, pattern)
        rows = await persons.find_persons(request.app[POOL], filters, after, PAGE + 1, everyone)
    except BadRequest as exc:
        message = str(exc)
    more = None
    if len(rows) > PAGE:
        cursor = persons.person_cursor(rows[PAGE - 1]["id"])
        more = urlencode(
            {"q": q, "stage": stage, "cursor": cursor} | ({"include_anonymous": "true"} if everyone else {})
        )
    shown = [dict(r) | {"name": display_name(r)} for r in rows[:PAGE]]
    return render(
        request, "people/list.html", status=422 if message else 200, title="People", message=message, q=q,
        q_max=persons.Q_MAX, stage=stage, stage_options=[("", "any"), *((s, s) for s in lifecycle.STAGES)],
        everyone=everyone, rows=shown, more=more,
    )  # fmt: skip


def _person_id(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound from None


ACTIVITY_KINDS = [("phone_call", "phone call"), ("site_visit", "site visit"), ("meeting", "meeting"),
                  ("note", "note"), ("email", "email")]  # fmt: skip
FACTS = (("Stage", "stage"), ("Emails", "emails"), ("Phones", "phones"), ("Company", "company"),
         ("Industry", "industry"), ("Country", "country"), ("Source", "source"), ("First seen", "first_seen"),
         ("Last seen", "last_seen"))  # fmt: skip


def _fact(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return "" if value is None else str(value)


def _timeline_entry(item: asyncpg.Record) -> dict[str, Any]:
    data = item["data"]
    what = data.get("type") or data.get("kind") or item["kind"]
    if item["kind"] == "stage":
        what = f"stage {data.get('from')} → {data.get('to')}"
    details = data.get("url") or data.get("reason") or data.get("outcome") or data.get("text") or ""
    return {"at": item["at"], "what": what, "details": details, "kind": item["kind"]}


async def person_page(request: web.Request, message: str | None = None, status: int = 200) -> web.Response:
    """GET /app/persons/{id}: facts, stage moves, rep activities and the timeline."""
    caller = await signed_in(request)
    pid = _person_id(request)
    pool = request.app[POOL]
    row = await pool.fetchrow(queries.PERSON, pid)
    if row is None:
        raise web.HTTPNotFound(reason="No such person")
    after: tuple[datetime | None, str | None] = (None, None)
    if cursor := request.query.get("cursor"):
        try:
            after = decode_cursor(cursor)
        except BadRequest:
            message = "That page link is broken; showing the newest entries."
    items = await pool.fetch(queries.TIMELINE, pid, after[0], after[1], PAGE + 1)
    facts = [(label, _fact(row[key])) for label, key in FACTS]
    facts.append(("Score", f"{row['score']:.1f}"))
    facts.extend((k, _fact(v)) for k, v in sorted(row["attributes"].items()))
    older = None
    if len(items) > PAGE:
        older = urlencode({"cursor": encode_cursor(items[PAGE - 1]["at"], items[PAGE - 1]["key"])})
    return render(
        request, "people/person.html", status=status, title=display_name(row), message=message, pid=pid,
        facts=facts, can_write=may(caller, persons.WRITERS),
        stage_options=[(s, s) for s in lifecycle.STAGES if s != row["stage"]], activity_kinds=ACTIVITY_KINDS,
        timeline=[_timeline_entry(i) for i in items[:PAGE]], older=older,
    )  # fmt: skip


async def move_stage(request: web.Request) -> web.Response:
    """POST /app/persons/{id}/stage."""
    caller = await signed_in(request)
    if not may(caller, persons.WRITERS):
        return forbidden(request)
    pid = _person_id(request)
    form = await request.post()
    stage, reason = str(form.get("stage", "")), str(form.get("reason", "")).strip()
    if stage not in lifecycle.STAGES:
        return await person_page(request, "Choose a stage from the list.", 422)
    try:
        if await request.app[POOL].fetchval("SELECT 1 FROM persons WHERE person_id = $1", pid) is None:
            raise web.HTTPNotFound
        await persons.change_person(request.app[POOL], pid, {"stage": stage, "reason": reason[:1000]}, caller)
    except (BadRequest, Conflict) as exc:
        return await person_page(request, str(exc), 422)
    raise web.HTTPSeeOther(f"/app/persons/{pid}")


async def log_activity(request: web.Request) -> web.Response:
    """POST /app/persons/{id}/activities: a call, visit, meeting or note; calls and visits make a prospect."""
    caller = await signed_in(request)
    if not may(caller, REPS):
        return forbidden(request)
    pid = _person_id(request)
    form = await request.post()
    kind = str(form.get("kind", ""))
    if kind not in ("site_visit", "phone_call", "meeting", "note", "email"):
        return await person_page(request, "Choose a kind of activity from the list.", 422)
    outcome = str(form.get("outcome", "")).replace("\x00", "")[:500] or None
    notes = str(form.get("notes", "")).replace("\x00", "")[:10000] or None
    async with request.app[POOL].acquire() as conn, conn.transaction():
        if await conn.fetchval("SELECT 1 FROM persons WHERE person_id = $1", pid) is None:
            raise web.HTTPNotFound
        row = await conn.fetchrow(
            "INSERT INTO activities (person_id, kind, rep_id, outcome, notes) VALUES ($1, $2, $3, $4, $5) RETURNING *",
            pid, kind, caller.user_id, outcome, notes,
        )  # fmt: skip
        await records.after_activity(conn, row, caller)
    raise web.HTTPSeeOther(f"/app/persons/{pid}")


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
        web.get("/app", person_list),
        web.get("/app/people", person_list),
        web.get("/app/persons/{id}", person_page),
        web.post("/app/persons/{id}/stage", move_stage),
        web.post("/app/persons/{id}/activities", log_activity),
        web.get("/app/leads/new", new_lead),
        web.post("/app/leads", create_lead),
    ]
