"""The people API: persons (search, read, rep edits), manual lead entry, the timeline, a person's raw events, and
the records reps keep about a person (purchases, feedback, activities; records.py)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from aiohttp import web

from leadline_crm import lifecycle
from leadline_crm.http.auth import READ_ROLES
from leadline_crm.http.crud import operations as crud_operations
from leadline_crm.http.errors import BadRequest
from leadline_crm.http.guard import require
from leadline_crm.http.keys import BODY, CALLER, POOL
from leadline_crm.http.openapi import Operation, Param
from leadline_crm.http.params import CURSOR, LIMIT, decode_cursor, encode_cursor, page_limit, uuid_param
from leadline_crm.http.responses import json_response
from leadline_crm.http.schemas import TEXT, UUID_S
from leadline_crm.people import privacy, queries, records
from leadline_crm.people.persons import (
    ATTRIBUTES,
    LEAD_WRITERS,
    PERSON_FIELDS,
    PHONE_REGION,
    Q_MAX,
    WRITERS,
    change_person,
    enter_lead,
    find_persons,
    no_nul,
    normalize_email,
    normalize_phone,
    person_cursor,
    read_person_cursor,
    search_pattern,
)
from leadline_shared.http import problem

PERSON_ID = Param("id", "path", UUID_S, "the person")


def _person(row: asyncpg.Record) -> dict[str, Any]:
    doc = dict(row)
    doc["erased"] = doc.pop("erased_at") is not None
    return doc


async def get_person(request: web.Request) -> web.Response:
    """GET /api/v1/persons/{id}."""
    person = uuid_param(request)
    row = await request.app[POOL].fetchrow(queries.PERSON, person)
    if row is None:
        survivor = await request.app[POOL].fetchval(queries.SURVIVOR, person)
        if survivor is not None:  # tell the caller where the history went
            return problem(404, "Not Found", f"merged into person {survivor}", merged_into=str(survivor))
        raise web.HTTPNotFound(text="no such person")
    return json_response(_person(row))


def flag(request: web.Request, name: str) -> bool | None:
    """An optional boolean query parameter (``true`` or ``false``); 422 on anything else."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if raw not in ("true", "false"):
        raise BadRequest(f"{name} must be true or false")
    return raw == "true"


async def list_persons(request: web.Request) -> web.Response:
    """GET /api/v1/persons?email=…&phone=…&stage=…&q=…&include_anonymous=…: newest first."""
    limit = page_limit(request)
    q = request.query
    email = normalize_email(q["email"]) if q.get("email") else None
    phone = normalize_phone(q["phone"]) if q.get("phone") else None
    stage = q.get("stage") or None
    if stage is not None and stage not in lifecycle.STAGES:
        raise BadRequest(f"stage must be one of {', '.join(lifecycle.STAGES)}")
    pattern = search_pattern(q.get("q"))
    for value in (email, phone):
        no_nul(value)
    after = read_person_cursor(q.get("cursor"))
    everyone = flag(request, "include_anonymous") or False
    rows = await find_persons(request.app[POOL], (email, phone, stage, pattern), after, limit + 1, everyone)
    nxt = None
    if len(rows) > limit:
        nxt = person_cursor(rows[limit - 1]["id"])
    return json_response({"items": [_person(r) for r in rows[:limit]], "next": nxt})


async def timeline(request: web.Request) -> web.Response:
    """GET /api/v1/persons/{id}/timeline: touchpoints, activities, purchases, feedback and stage moves."""
    person = uuid_param(request)
    limit = page_limit(request)
    after: tuple[datetime | None, str | None] = (None, None)
    if cursor := request.query.get("cursor"):
        after = decode_cursor(cursor)
    pool = request.app[POOL]
    async with pool.acquire() as conn:
        if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM persons WHERE person_id = $1)", person):
            raise web.HTTPNotFound(text="no such person")
        rows = await conn.fetch(queries.TIMELINE, person, after[0], after[1], limit + 1)
    nxt = encode_cursor(rows[limit - 1]["at"], rows[limit - 1]["key"]) if len(rows) > limit else None
    items = [{"kind": r["kind"], "at": r["at"], "id": r["key"], "data": r["data"]} for r in rows[:limit]]
    return json_response({"items": items, "next": nxt})


async def patch_person(request: web.Request) -> web.Response:
    """PATCH /api/v1/persons/{id}: facts, custom attributes, and stage moves (any direction, with a reason)."""
    row = await change_person(
        request.app[POOL], uuid_param(request), request[BODY], request[CALLER], request.app[PHONE_REGION]
    )
    return json_response(_person(row))


async def create_lead(request: web.Request) -> web.Response:
    """POST /api/v1/leads: a rep enters a lead; 409 naming the existing person when the email or phone is
    known, unless ``force``."""
    row = await enter_lead(request.app[POOL], request[BODY], request[CALLER], request.app[PHONE_REGION])
    return json_response(_person(row), status=201)


PATCH_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        **{k: {"anyOf": [v, {"type": "null"}]} for k, v in PERSON_FIELDS.items()},
        "stage": {"type": "string", "enum": list(lifecycle.STAGES)},
        "reason": {"type": "string", "minLength": 1, "maxLength": 1000},
        "attributes": {**ATTRIBUTES, "description": "merged into the current ones; null removes a field"},
        "emails": {
            "type": "array",
            "maxItems": 20,
            "items": {"type": "string", "minLength": 3, "maxLength": 320},  # checked by normalize_email
        },
        "phones": {
            "type": "array",
            "maxItems": 20,
            "items": {"type": "string", "minLength": 3, "maxLength": 40},
        },
    },
}


LEAD_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        **PERSON_FIELDS,
        "email": {"type": "string", "minLength": 3, "maxLength": 320},  # checked by normalize_email
        "phone": {"type": "string", "minLength": 3, "maxLength": 40},
        "source": TEXT,
        "attributes": ATTRIBUTES,
        "force": {
            "type": "boolean",
            "description": "create even when the email or phone is already known; the new person then does not"
            " claim a known value in the identity graph, so web forms with it stay with the existing person",
        },
    },
    "description": "give an email or a phone (or both)",
}


async def list_events(request: web.Request) -> web.Response:
    """GET /api/v1/events?anon_id=…|person_id=…: raw touchpoints, newest first."""
    require(request, READ_ROLES)
    filters = [(k, request.query[k]) for k in ("anon_id", "person_id") if request.query.get(k)]
    if len(filters) != 1:
        raise BadRequest("give exactly one of anon_id or person_id")
    column, value = filters[0]
    if column == "person_id":
        try:
            value = str(uuid.UUID(value))
        except ValueError:
            raise BadRequest("person_id must be a UUID") from None
    limit = page_limit(request)
    after: tuple[datetime | None, str | None] = (None, None)
    if cursor := request.query.get("cursor"):
        after = decode_cursor(cursor)
    sql = queries.EVENTS_PAGE.format(column="anon_id" if column == "anon_id" else "person_id::text")
    rows = await request.app[POOL].fetch(sql, value, after[0], after[1], limit + 1)
    items = [orjson.Fragment(row["event"]) for row in rows[:limit]]  # stored JSON text, sent as is
    nxt = (
        encode_cursor(rows[limit - 1]["occurred_at"], rows[limit - 1]["event_id"])
        if len(rows) > limit
        else None
    )
    return json_response({"items": items, "next": nxt})


def operations() -> list[Operation]:
    """The people API: persons and leads, a person's raw events, then the records about a person."""
    return [
        Operation(
            "GET",
            "/api/v1/persons",
            list_persons,
            "Find known persons (and, on request, anonymous visitors) by email, phone, stage or free text",
            READ_ROLES,
            "persons",
            params=(
                Param("email", "query", {"type": "string"}, "exact email (case-insensitive)"),
                Param("phone", "query", {"type": "string"}, "phone in international form"),
                Param(
                    "stage", "query", {"type": "string", "enum": list(lifecycle.STAGES)}, "lifecycle stage"
                ),
                Param("q", "query", {"type": "string", "maxLength": Q_MAX}, "text in name, company or email"),
                Param(
                    "include_anonymous",
                    "query",
                    {"type": "boolean", "default": False},
                    "also list anonymous visitors (persons with no email, phone, user id or name); implied by"
                    " stage=anonymous",
                ),
                LIMIT,
                CURSOR,
            ),
        ),
        Operation(
            "GET",
            "/api/v1/persons/{id}",
            get_person,
            "Get a person",
            READ_ROLES,
            "persons",
            params=(PERSON_ID,),
        ),
        Operation(
            "PATCH",
            "/api/v1/persons/{id}",
            patch_person,
            "Change a person's facts or custom attributes, or move their stage (with a reason)",
            WRITERS,
            "persons",
            params=(PERSON_ID,),
            body=PATCH_BODY,
            errors=(409,),
        ),
        Operation(
            "GET",
            "/api/v1/persons/{id}/timeline",
            timeline,
            "Everything that happened with a person, newest first",
            READ_ROLES,
            "persons",
            params=(PERSON_ID, LIMIT, CURSOR),
        ),
        Operation(
            "POST",
            "/api/v1/leads",
            create_lead,
            "Enter a lead by hand (duplicate check on email and phone)",
            LEAD_WRITERS,
            "persons",
            body=LEAD_BODY,
            status=201,
            errors=(409,),
        ),
        Operation(
            "GET",
            "/api/v1/events",
            list_events,
            "Raw touchpoints of a visitor (anon_id) or a person (person_id), newest first",
            READ_ROLES,
            "events",
            params=(
                Param("anon_id", "query", {"type": "string"}, "the visitor cookie"),
                Param("person_id", "query", {"type": "string", "format": "uuid"}, "the person"),
                LIMIT,
                CURSOR,
            ),
        ),
        *privacy.operations(),
    ] + [op for res in records.RESOURCES for op in crud_operations(res)]
