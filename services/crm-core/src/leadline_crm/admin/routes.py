"""What an admin keeps: the users (reps and their roles), the custom fields of a person, the score rules and
the scoring settings (how fast a score fades, what makes a lead a prospect; architecture.md §5); and the audit
log, read here (architecture.md §10)."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from leadline_crm import queries
from leadline_crm.http.auth import ADMIN, ROLES, ROLES_ALL
from leadline_crm.http.crud import Column, Resource
from leadline_crm.http.crud import operations as crud_operations
from leadline_crm.http.keys import BODY, POOL
from leadline_crm.http.openapi import Operation
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


async def change_scoring(pool: asyncpg.Pool, body: dict[str, Any]) -> asyncpg.Record:
    """Change the scoring settings from a body valid against :data:`SCORING_BODY` (the API's PATCH and the
    settings page share it); applies to the next ingested batch (stages already reached stay)."""
    sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(body, 1))
    row: asyncpg.Record = await pool.fetchrow(
        f"UPDATE scoring SET {sets} RETURNING half_life_days, prospect_threshold, repeat_visit_days",  # noqa: S608
        *body.values(),
    )
    return row


async def patch_scoring(request: web.Request) -> web.Response:
    """PATCH /api/v1/scoring: applies to the next ingested batch (stages already reached stay)."""
    row = await change_scoring(request.app[POOL], request[BODY])
    return json_response(dict(row))


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
