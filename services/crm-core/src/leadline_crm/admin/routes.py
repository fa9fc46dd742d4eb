"""What an admin keeps: the users (reps and their roles), the custom fields of a person, the score rules and
the scoring settings (how fast a score fades, what makes a lead a prospect; architecture.md §5); and the audit
log, read here (architecture.md §10)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiohttp import web

from leadline_crm import queries
from leadline_crm.admin.accounts import user_email
from leadline_crm.http import audit, session
from leadline_crm.http.auth import ADMIN, ROLES, ROLES_ALL, Caller
from leadline_crm.http.crud import Column, Resource, Row
from leadline_crm.http.crud import operations as crud_operations
from leadline_crm.http.errors import BadRequest
from leadline_crm.http.keys import BODY, CALLER, POOL
from leadline_crm.http.openapi import Operation, Param
from leadline_crm.http.params import CURSOR, LIMIT, decode_cursor, encode_cursor, page_limit
from leadline_crm.http.responses import json_response
from leadline_crm.http.schemas import NAME, STRINGS
from leadline_shared.events import EVENT_TYPES


async def _user_defaults(conn: asyncpg.Connection, values: dict[str, Any], caller: Caller) -> None:
    """A user's email in its canonical form, as sign-in looks it up."""
    values["email"] = user_email(values["email"])


async def _after_user_update(conn: asyncpg.Connection, row: Row, caller: Caller) -> None:
    """A deactivated user's sessions end at once (their tokens stop working too: http/queries.TOKEN_CALLER)."""
    if not row["active"]:
        await session.end_all(conn, row["id"])


RESOURCES = (
    Resource(
        "field_definitions",
        "custom field definition",
        "field_definitions",
        "name",
        (
            Column("name", {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,62}$"}, required=True),
            Column("label", NAME, required=True),
            Column(
                "type",
                {"type": "string", "enum": ["text", "number", "boolean", "date", "choice"]},
                required=True,
            ),
            Column("choices", STRINGS, cast="jsonb"),
            Column("required", {"type": "boolean"}, cast="boolean"),
        ),
        ROLES_ALL,
        ADMIN,
        generated_key=False,
        immutable=frozenset({"name"}),
    ),
    Resource(
        "score_rules",
        "score rule",
        "score_rules",
        "id",
        (
            Column("name", NAME, required=True),
            Column("event_type", {"type": "string", "enum": sorted(EVENT_TYPES)}, required=True),
            Column("url_contains", {"type": "string", "minLength": 1, "maxLength": 500}, nullable=True),
            Column(
                "points", {"type": "number", "minimum": -1000, "maximum": 1000}, required=True, cast="float8"
            ),
            Column("active", {"type": "boolean"}, cast="boolean"),
        ),
        ROLES_ALL,
        ADMIN,
    ),
    Resource(
        "users",
        "user",
        "users",
        "id",
        (
            Column(
                "email",
                {"type": "string", "format": "email", "minLength": 3, "maxLength": 320},
                required=True,
            ),
            Column("name", NAME, required=True),
            Column("role", {"type": "string", "enum": list(ROLES)}, required=True),
            Column("active", {"type": "boolean"}, cast="boolean"),
        ),
        ROLES_ALL,
        ADMIN,
        ops=frozenset({"list", "create", "get", "update"}),
        prepare=_user_defaults,
        after_update=_after_user_update,
    ),
)

SCORING_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "half_life_days": {"type": "number", "exclusiveMinimum": 0, "maximum": 3650},
        "prospect_threshold": {"type": "number", "minimum": 0, "maximum": 1e6},
        "repeat_visit_days": {"type": "integer", "minimum": 1, "maximum": 365},
    },
}


async def get_scoring(request: web.Request) -> web.Response:
    """GET /api/v1/scoring: the score half-life and what makes a lead a prospect."""
    row = await request.app[POOL].fetchrow(queries.SCORING)
    return json_response(dict(row))


async def change_scoring(pool: asyncpg.Pool, body: dict[str, Any], caller: Caller) -> asyncpg.Record:
    """Change the scoring settings from a body valid against :data:`SCORING_BODY` (the API's PATCH and the
    settings page share it); applies to the next ingested batch (stages already reached stay). Audited."""
    sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(body, 1))
    async with pool.acquire() as conn, conn.transaction():
        old = await conn.fetchrow(queries.SCORING + " FOR UPDATE")
        row: asyncpg.Record = await conn.fetchrow(
            f"UPDATE scoring SET {sets} RETURNING half_life_days, prospect_threshold, repeat_visit_days",  # noqa: S608
            *body.values(),
        )
        changes = audit.diff(old, row, body)
        if changes:
            await audit.record(conn, caller, "update", "scoring", "settings", changes)
    return row


async def patch_scoring(request: web.Request) -> web.Response:
    """PATCH /api/v1/scoring: applies to the next ingested batch (stages already reached stay)."""
    row = await change_scoring(request.app[POOL], request[BODY], request[CALLER])
    return json_response(dict(row))


def _when(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an ISO 8601 date or date-time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def list_audit(request: web.Request) -> web.Response:
    """GET /api/v1/audit: who changed what and when (web app and API alike), newest first."""
    q = request.query
    for name in ("actor", "entity_type", "entity_id"):
        if "\x00" in q.get(name, "") or len(q.get(name, "")) > 200:
            raise BadRequest(f"{name}: at most 200 characters, no NUL")
    filters = audit.Filters(
        q.get("actor") or None,
        q.get("entity_type") or None,
        q.get("entity_id") or None,
        _when(request, "since"),
        _when(request, "until"),
    )
    limit = page_limit(request)
    after = None
    if cursor := q.get("cursor"):
        at, ident = decode_cursor(cursor)
        if not ident.isdigit():
            raise BadRequest("invalid cursor")
        after = (at, int(ident))
    rows = await audit.find(request.app[POOL], filters, after, limit + 1)
    nxt = encode_cursor(rows[limit - 1]["at"], str(rows[limit - 1]["id"])) if len(rows) > limit else None
    return json_response({"items": [dict(r) for r in rows[:limit]], "next": nxt})


AUDIT_PARAMS = (
    Param("actor", "query", {"type": "string", "maxLength": 200}, "part of the actor's name or user email"),
    Param("entity_type", "query", {"type": "string", "maxLength": 200}, "e.g. persons, purchases, users"),
    Param("entity_id", "query", {"type": "string", "maxLength": 200}, "the changed record's id"),
    Param("since", "query", {"type": "string", "format": "date-time"}, "from this time (inclusive)"),
    Param("until", "query", {"type": "string", "format": "date-time"}, "before this time"),
    LIMIT,
    CURSOR,
)


def operations() -> list[Operation]:
    """The admin's REST operations: custom fields, score rules, users, the scoring settings, the audit log."""
    return [op for res in RESOURCES for op in crud_operations(res)] + [
        Operation("GET", "/api/v1/scoring", get_scoring, "Scoring settings", ROLES_ALL, "score rules"),
        Operation(
            "PATCH",
            "/api/v1/scoring",
            patch_scoring,
            "Change the score half-life, the prospect threshold or the repeat-visit days",
            ADMIN,
            "score rules",
            body=SCORING_BODY,
        ),
        Operation(
            "GET",
            "/api/v1/audit",
            list_audit,
            "The audit log: who changed what and when, through the web app or the API",
            ADMIN,
            "audit",
            params=AUDIT_PARAMS,
        ),
    ]
