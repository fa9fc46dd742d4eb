"""The service desk's API: cases (``/api/v1/cases``, by tracking number), service contracts and their renewals, and
the knowledge base with its search. Contracts and articles are generic CRUD resources (http/crud.py); cases have
their own operations because their number, status machine and comments are more than a row's columns."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from aiohttp import web

from leadline_crm.http.auth import READ_ROLES, REPS, ROLES_ALL, Caller
from leadline_crm.http.crud import Column, Resource, Row
from leadline_crm.http.crud import operations as crud_operations
from leadline_crm.http.errors import BadRequest
from leadline_crm.http.keys import BODY, CALLER, POOL
from leadline_crm.http.openapi import Operation, Param
from leadline_crm.http.params import CURSOR, LIMIT, decode_cursor, encode_cursor, page_limit, query_uuid
from leadline_crm.http.responses import json_response
from leadline_crm.http.schemas import DATE, LONG_TEXT, NAME, STRINGS, UUID_S
from leadline_crm.service import cases, kb, queries, report

#: Who runs the service desk: admins and service agents write contracts and articles; reps may open cases.
SERVICE = frozenset({"admin", "service"})
CASE_WRITERS = REPS
MAX_AGE_DAYS = 3660  # the queue's age filter, as far back as the report reaches


async def check_period(conn: Any, values: dict[str, Any], caller: Caller) -> None:
    """A contract cannot end before it starts: a 422 naming both dates (the table's CHECK refuses it as well, for a
    change of one of the dates)."""
    if values["ends_on"] < values["starts_on"]:
        raise BadRequest(f"ends_on: {values['ends_on']} is before starts_on {values['starts_on']}")


async def _touch(conn: Any, row: Row, caller: Caller) -> None:
    await conn.execute("UPDATE kb_articles SET updated_at = now() WHERE id = $1", row["id"])


CONTRACTS = Resource(
    "contracts",
    "service contract",
    "service_contracts",
    "id",
    (
        Column("person_id", UUID_S, required=True, cast="uuid"),
        Column("name", NAME, required=True),
        Column("product_id", UUID_S, cast="uuid", nullable=True),
        Column("purchase_id", UUID_S, cast="uuid", nullable=True),
        Column("starts_on", DATE, required=True, cast="date"),
        Column("ends_on", DATE, required=True, cast="date"),
        Column("response_hours", {"type": "integer", "minimum": 1, "maximum": 8760}, cast="integer"),
        Column("status", {"type": "string", "enum": ["active", "suspended", "cancelled", "expired"]}),
    ),
    READ_ROLES,
    SERVICE,
    filters=(
        Param("person_id", "query", UUID_S, "only this person's contracts"),
        Param("status", "query", {"type": "string"}, "only contracts with this status"),
    ),
    ops=frozenset({"list", "create", "get", "update"}),
    prepare=check_period,
    immutable=frozenset({"person_id"}),
)

ARTICLES = Resource(
    "kb/articles",
    "knowledge base article",
    "kb_articles",
    "id",
    (
        Column("title", NAME, required=True),
        Column("body", {"type": "string", "maxLength": 100000}, required=True),
        Column("tags", STRINGS, cast="text[]"),
        Column("product_id", UUID_S, cast="uuid", nullable=True),
        Column("public", {"type": "boolean"}, cast="boolean"),
    ),
    READ_ROLES,
    SERVICE,
    ops=frozenset({"list", "create", "get", "update", "delete"}),
    after_update=_touch,
)

CASE_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["person_id", "type", "subject", "description"],
    "properties": {
        "person_id": UUID_S,
        "type": {"type": "string", "enum": list(cases.TYPES)},
        "subject": NAME,
        "description": {**LONG_TEXT, "minLength": 1},
        "priority": {"type": "string", "enum": list(cases.PRIORITIES)},
        "purchase_id": UUID_S,
        "contract_id": UUID_S,
        "assignee_id": UUID_S,
    },
}
CHANGE_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "priority": {"type": "string", "enum": list(cases.PRIORITIES)},
        "assignee_id": {"anyOf": [UUID_S, {"type": "null"}]},
    },
}
STATUS_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["status"],
    "properties": {"status": {"type": "string", "enum": list(cases.STATUSES)}},
}
COMMENT_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["body"],
    "properties": {"body": {**LONG_TEXT, "minLength": 1}, "public": {"type": "boolean", "default": False}},
}
NUMBER = Param("number", "path", {"type": "string", "pattern": cases.TRACKING_PATTERN}, "the tracking number")


def _case(row: Any) -> dict[str, Any]:
    """A case as the API shows it; a queue row's customer facts under ``customer``."""
    doc = dict(row)
    if "email" in doc:
        doc["customer"] = {k: doc.pop(k) for k in ("first_name", "last_name", "email")}
    return doc


def _number(request: web.Request) -> str:
    number = request.match_info["number"]
    if "\x00" in number or len(number) > 40:
        raise web.HTTPNotFound(text="no such case")
    return number


async def _found(coro: Any) -> Any:
    try:
        return await coro
    except cases.UnknownCase:
        raise web.HTTPNotFound(text="no case with this tracking number") from None


async def create_case(request: web.Request) -> web.Response:
    """POST /api/v1/cases: 201 with the case and its tracking number."""
    body: dict[str, Any] = request[BODY]
    row = await cases.create_case(request.app[POOL], body, request[CALLER])
    return json_response(_case(row), status=201)


async def get_case(request: web.Request) -> web.Response:
    """GET /api/v1/cases/{number}."""
    row = await _found(cases.get_case(request.app[POOL], _number(request)))
    doc = _case(row)
    doc["comments"] = [dict(c) for c in await cases.comments(request.app[POOL], row["id"])]
    return json_response(doc)


def queue_filter(query: Any) -> cases.QueueFilter:
    """The queue's filters from query parameters (the API's and the queue page's)."""
    status, type_ = query.get("status") or None, query.get("type") or None
    cases.check_filter(status, type_)
    raw = query.get("assignee") or None
    assignee: Any = raw
    if raw not in (None, "none"):
        try:
            assignee = uuid.UUID(raw)
        except ValueError:
            raise BadRequest("assignee must be a user's id or none") from None
    overdue = query.get("overdue", "")
    if overdue not in ("", "true", "false", "1", "0"):
        raise BadRequest("overdue must be true or false")
    age = query.get("older_than") or ""
    if age and not (age.isascii() and age.isdigit() and int(age) <= MAX_AGE_DAYS):
        raise BadRequest(f"older_than must be a number of days from 0 to {MAX_AGE_DAYS}")
    return cases.QueueFilter(
        status, type_, assignee, overdue in ("true", "1"), older_than=int(age) if age else None
    )


async def list_cases(request: web.Request) -> web.Response:
    """GET /api/v1/cases: newest first, filtered, paged by cursor."""
    limit = page_limit(request)
    where = queue_filter(request.query)
    person = query_uuid(request, "person_id")
    if person is not None:
        where = dataclasses.replace(where, person_id=person)
    after = decode_cursor(request.query["cursor"]) if request.query.get("cursor") else None
    rows = await cases.find_cases(request.app[POOL], where, after, limit + 1)
    nxt = (
        encode_cursor(rows[limit - 1]["created_at"], str(rows[limit - 1]["id"]))
        if len(rows) > limit
        else None
    )
    return json_response({"items": [_case(r) for r in rows[:limit]], "next": nxt})


async def change_case(request: web.Request) -> web.Response:
    """PATCH /api/v1/cases/{number}: priority, assignee."""
    body: dict[str, Any] = request[BODY]
    row = await _found(cases.change(request.app[POOL], _number(request), body, request[CALLER]))
    return json_response(_case(row))


async def move_case(request: web.Request) -> web.Response:
    """POST /api/v1/cases/{number}/status: 409 with the allowed moves when the move is not one."""
    row = await _found(
        cases.move(request.app[POOL], _number(request), request[BODY]["status"], request[CALLER])
    )
    return json_response(_case(row))


async def add_comment(request: web.Request) -> web.Response:
    """POST /api/v1/cases/{number}/comments."""
    body = request[BODY]
    row = await _found(
        cases.comment(
            request.app[POOL], _number(request), body["body"], body.get("public", False), request[CALLER]
        )
    )
    return json_response(dict(row), status=201)


async def renewals(request: web.Request) -> web.Response:
    """GET /api/v1/contracts/renewals?days=30: active contracts ending within ``days``, soonest first."""
    raw = request.query.get("days", "30")
    if not (raw.isascii() and raw.isdigit()) or not 0 <= int(raw) <= 366:
        raise BadRequest("days must be an integer from 0 to 366")
    rows = await request.app[POOL].fetch(queries.RENEWALS, int(raw), page_limit(request, 100, 500))
    return json_response({"items": [dict(r) for r in rows], "next": None})


async def search_kb(request: web.Request) -> web.Response:
    """GET /api/v1/kb/search?q=: ranked, highlighted (``snippet`` is HTML: escaped text with ``<mark>``)."""
    q = kb.clean_query(request.query.get("q", ""))
    if not q:
        raise BadRequest("q: type a few words to search for")
    public_only = request.query.get("public") == "true"
    hits = await kb.search(request.app[POOL], q, page_limit(request, 20, 100), public_only)
    return json_response({"items": [h.doc() for h in hits], "next": None})


async def service_report(request: web.Request) -> web.Response:
    """GET /api/v1/reports/service: cases by product and type (JSON, or ``?format=csv``)."""
    span = report.Range.parse(dict(request.query))
    async with request.app[POOL].acquire() as conn:
        rows = await report.rows(conn, span)
    if request.query.get("format") == "csv":
        name = f"service-{span.start}-{span.end}.csv"
        return web.Response(text=report.to_csv(rows), content_type="text/csv",
                            headers={"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip
    return json_response({"report": "service", "from": span.start.isoformat(), "to": span.end.isoformat(),
                          "by_type": report.by_type(rows), "rows": rows})  # fmt: skip


def operations() -> list[Operation]:
    """The service desk's operations (the renewals and search before the CRUD item routes they would shadow)."""
    tag = "service"
    return [
        Operation("POST", "/api/v1/cases", create_case, "Open a case (answers its SR-YYYY-NNNNNN tracking number)",
                  CASE_WRITERS, tag, body=CASE_BODY, status=201),
        Operation("GET", "/api/v1/cases", list_cases, "The case queue, newest first", ROLES_ALL, tag,
                  params=(Param("status", "query", {"type": "string", "enum": list(cases.STATUSES)}),
                          Param("type", "query", {"type": "string", "enum": list(cases.TYPES)}),
                          Param("assignee", "query", {"type": "string"}, "a user's id, or none"),
                          Param("overdue", "query", {"type": "boolean"}, "open cases past their due time"),
                          Param("older_than", "query", {"type": "integer", "minimum": 0, "maximum": MAX_AGE_DAYS},
                                "opened more than this many days ago"),
                          Param("person_id", "query", UUID_S, "only this person's cases"), LIMIT, CURSOR)),
        Operation("GET", "/api/v1/cases/{number}", get_case, "A case and its comments", ROLES_ALL, tag,
                  params=(NUMBER,)),
        Operation("PATCH", "/api/v1/cases/{number}", change_case, "Change a case's priority or assignee",
                  CASE_WRITERS, tag, params=(NUMBER,), body=CHANGE_BODY),
        Operation("POST", "/api/v1/cases/{number}/status", move_case,
                  "Move a case (new → open → waiting → resolved → closed; reopen)", CASE_WRITERS, tag,
                  params=(NUMBER,), body=STATUS_BODY, errors=(409,)),
        Operation("POST", "/api/v1/cases/{number}/comments", add_comment, "Comment on a case (internal or public)",
                  CASE_WRITERS, tag, params=(NUMBER,), body=COMMENT_BODY, status=201),
        Operation("GET", "/api/v1/contracts/renewals", renewals, "Active contracts ending soon", ROLES_ALL, tag,
                  params=(Param("days", "query", {"type": "integer", "minimum": 0, "maximum": 366,
                                                  "default": 30}), LIMIT)),
        *crud_operations(CONTRACTS),
        Operation("GET", "/api/v1/reports/service", service_report,
                  "Cases and complaints by product and type: counts, median hours to first response and to "
                  "resolve, service-level breaches", READ_ROLES, "reports",
                  params=(Param("from", "query", DATE, "first day, by opening (default: 90 days before `to`)"),
                          Param("to", "query", DATE, "last day, included (default: today, UTC)"),
                          Param("format", "query", {"type": "string", "enum": ["json", "csv"]}, "csv: the rows"))),
        Operation("GET", "/api/v1/kb/search", search_kb, "Search the knowledge base", ROLES_ALL, "kb",
                  params=(Param("q", "query", {"type": "string", "maxLength": 200}, "the words", required=True),
                          Param("public", "query", {"type": "boolean"}, "public articles only"), LIMIT)),
        *crud_operations(ARTICLES),
    ]  # fmt: skip
