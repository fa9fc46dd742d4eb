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
from leadline_crm.http.pages import error_box, esc, forbidden, may, page, same_origin, signed_in
from leadline_crm.http.params import decode_cursor, encode_cursor
from leadline_crm.people import persons, queries, records

PAGE = 50


async def person_list(request: web.Request) -> web.Response:
    """GET /app: find persons by text, email or stage."""
    caller = await signed_in(request)
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
    options = "".join(
        f"<option value='{s}'{' selected' if s == stage else ''}>{s}</option>"
        for s in ("", *lifecycle.STAGES)
    )
    body = [
        error_box(message),
        "<form method='get' action='/app' class='card'>"
        f"<label>Search <input name='q' value='{esc(q)}' maxlength='{persons.Q_MAX}'"
        " placeholder='name, company or email'></label>"
        f"<label>Stage <select name='stage'>{options}</select></label>"
        "<label><input type='checkbox' name='include_anonymous' value='true'"
        f"{' checked' if everyone else ''}> anonymous visitors too</label><button>Find</button></form>",
        "<table><tr><th>Name</th><th>Email</th><th>Company</th><th>Stage</th><th>Score</th><th>Last seen</th></tr>",
    ]
    for r in rows[:PAGE]:
        name = " ".join(filter(None, (r["first_name"], r["last_name"]))) or "(anonymous)"
        body.append(
            f"<tr><td><a href='/app/persons/{r['id']}'>{esc(name)}</a></td><td>{esc(r['emails'])}</td>"
            f"<td>{esc(r['company'])}</td><td><span class='stage'>{esc(r['stage'])}</span></td>"
            f"<td>{r['score']:.0f}</td><td>{esc(r['last_seen'])}</td></tr>"
        )
    body.append("</table>")
    if not rows and not message:
        body.append("<p>No persons match.</p>")
    if len(rows) > PAGE:
        cursor = persons.person_cursor(rows[PAGE - 1]["id"])
        more = {"q": q, "stage": stage, "cursor": cursor} | (
            {"include_anonymous": "true"} if everyone else {}
        )
        body.append(f"<p><a href='/app?{esc(urlencode(more))}'>More</a></p>")
    return page("Persons", "".join(body), caller)


def _person_id(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound from None


async def person_page(request: web.Request, message: str | None = None, status: int = 200) -> web.Response:
    """GET /app/persons/{id}: facts, stage moves, rep activities and the timeline."""
    caller = await signed_in(request)
    pid = _person_id(request)
    pool = request.app[POOL]
    row = await pool.fetchrow(queries.PERSON, pid)
    if row is None:
        return page("Not found", "<p>No such person. <a href='/app'>Back to the list</a></p>", caller, 404)
    after: tuple[datetime | None, str | None] = (None, None)
    if cursor := request.query.get("cursor"):
        try:
            after = decode_cursor(cursor)
        except BadRequest:
            message = "That page link is broken; showing the newest entries."
    items = await pool.fetch(queries.TIMELINE, pid, after[0], after[1], PAGE + 1)
    name = " ".join(filter(None, (row["first_name"], row["last_name"]))) or "(anonymous)"
    facts = "".join(
        f"<dt>{esc(label)}</dt><dd>{esc(row[key])}</dd>"
        for label, key in (
            ("Stage", "stage"), ("Emails", "emails"), ("Phones", "phones"), ("Company", "company"),
            ("Industry", "industry"), ("Country", "country"), ("Source", "source"), ("First seen", "first_seen"),
            ("Last seen", "last_seen"),
        )
    )  # fmt: skip
    facts += f"<dt>Score</dt><dd>{row['score']:.1f}</dd>"
    facts += "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in sorted(row["attributes"].items()))
    body = [error_box(message), f"<div class='card'><dl>{facts}</dl></div>"]
    if may(caller, persons.WRITERS):
        options = "".join(f"<option>{s}</option>" for s in lifecycle.STAGES if s != row["stage"])
        body.append(
            f"<form method='post' action='/app/persons/{pid}/stage' class='card'><h2>Move stage</h2>"
            f"<label>To <select name='stage'>{options}</select></label>"
            "<label>Reason <input name='reason' size='60' required maxlength='1000'></label><button>Move</button></form>"
            f"<form method='post' action='/app/persons/{pid}/activities' class='card'><h2>Log an activity</h2>"
            "<label>Kind <select name='kind'><option value='phone_call'>phone call</option>"
            "<option value='site_visit'>site visit</option><option value='meeting'>meeting</option>"
            "<option value='note'>note</option><option value='email'>email</option></select></label>"
            "<label>Outcome <input name='outcome' size='60' maxlength='500'></label>"
            "<label>Notes <textarea name='notes' rows='3' cols='60' maxlength='10000'></textarea></label>"
            "<button>Log</button></form>"
        )
    body.append("<h2>Timeline</h2><table><tr><th>When</th><th>What</th><th>Details</th></tr>")
    for item in items[:PAGE]:
        data = item["data"]
        what = data.get("type") or data.get("kind") or item["kind"]
        if item["kind"] == "stage":
            what = f"stage {data.get('from')} → {data.get('to')}"
        details = data.get("url") or data.get("reason") or data.get("outcome") or data.get("text") or ""
        body.append(f"<tr><td>{esc(item['at'])}</td><td>{esc(what)}</td><td>{esc(details)}</td></tr>")
    body.append("</table>")
    if len(items) > PAGE:
        nxt = encode_cursor(items[PAGE - 1]["at"], items[PAGE - 1]["key"])
        body.append(f"<p><a href='/app/persons/{pid}?{esc(urlencode({'cursor': nxt}))}'>Older</a></p>")
    return page(name, "".join(body), caller, status)


async def move_stage(request: web.Request) -> web.Response:
    """POST /app/persons/{id}/stage."""
    same_origin(request)
    caller = await signed_in(request)
    if not may(caller, persons.WRITERS):
        return forbidden(caller)
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
    same_origin(request)
    caller = await signed_in(request)
    if not may(caller, REPS):
        return forbidden(caller)
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


def _lead_form(values: dict[str, str], message: str | None = None, existing: str | None = None) -> str:
    inputs = "".join(
        f"<label>{esc(label)} <input name='{key}' value='{esc(values.get(key, ''))}' maxlength='200'></label>"
        for key, label in LEAD_FIELDS
    )
    dup = ""
    if existing:
        dup = (
            f"<p><a href='/app/persons/{esc(existing)}'>Open the existing person</a>, or "
            "<label><input type='checkbox' name='force' value='1'> create a new lead anyway</label></p>"
        )
    return f"{error_box(message)}<form method='post' action='/app/leads' class='card'>{inputs}{dup}<button>Create lead</button></form>"


async def new_lead(request: web.Request) -> web.Response:
    """GET /app/leads/new."""
    caller = await signed_in(request)
    if not may(caller, persons.LEAD_WRITERS):
        return forbidden(caller)
    return page("New lead", _lead_form({}), caller)


async def create_lead(request: web.Request) -> web.Response:
    """POST /app/leads: the same duplicate check as the API; a duplicate links to the existing person."""
    same_origin(request)
    caller = await signed_in(request)
    if not may(caller, persons.LEAD_WRITERS):
        return forbidden(caller)
    form = await request.post()
    values = {key: str(form.get(key, "")).strip()[:200] for key, _ in LEAD_FIELDS}
    body: dict[str, Any] = {k: v for k, v in values.items() if v}
    body["force"] = form.get("force") == "1"
    try:
        if body.get("email") and "@" not in body["email"]:
            raise BadRequest("email: that is not an email address")
        row = await persons.enter_lead(request.app[POOL], body, caller, request.app[persons.PHONE_REGION])
    except Conflict as exc:
        return page(
            "New lead", _lead_form(values, str(exc), exc.extra.get("existing_person_id")), caller, 409
        )
    except BadRequest as exc:
        return page("New lead", _lead_form(values, str(exc)), caller, 422)
    raise web.HTTPSeeOther(f"/app/persons/{row['id']}")


def pages() -> list[web.RouteDef]:
    """The people pages."""
    return [
        web.get("/app", person_list),
        web.get("/app/persons/{id}", person_page),
        web.post("/app/persons/{id}/stage", move_stage),
        web.post("/app/persons/{id}/activities", log_activity),
        web.get("/app/leads/new", new_lead),
        web.post("/app/leads", create_lead),
    ]
