"""Privacy in the product (issue 14): an admin exports everything crm-core holds on a person as one JSON document.

``GET /api/v1/persons/{id}/export`` reads, in one repeatable-read transaction, the person's row (profile and
identifiers), its touchpoints (the stored event JSON), activities, purchases, feedback, stage history, email
sends, cases with their comments and events, service contracts, deals with their stage history, tasks, the ids
merged into it and the audit entries about it. Each section is built by PostgreSQL as JSON text and sent as is.
A merged-away id answers 404 naming the survivor, as the other person routes do. The export is itself audited
(``export`` on the person, holding no personal data).
"""

from __future__ import annotations

import uuid

import asyncpg
import orjson
from aiohttp import web

from leadline_crm.http import audit
from leadline_crm.http.auth import ADMIN, Caller
from leadline_crm.http.keys import CALLER, POOL
from leadline_crm.http.openapi import Operation, Param
from leadline_crm.http.pages import forbidden, may, signed_in
from leadline_crm.http.params import uuid_param
from leadline_crm.http.responses import json_response
from leadline_crm.http.schemas import UUID_S
from leadline_crm.people import queries
from leadline_shared.http import problem

PERSON_ID = Param("id", "path", UUID_S, "the person")


def _rows(sql: str, order: str) -> str:
    """A JSON array (as text) of the rows ``sql`` selects as ``t``; ``[]`` when none."""
    return f"SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY {order}), '[]')::text FROM ({sql}) t"  # noqa: S608


# Every section: its key in the document and a query of the person ($1) answering one JSON text.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("profile", "SELECT to_jsonb(p)::text FROM persons p WHERE person_id = $1"),
    (
        "identifiers",
        "SELECT jsonb_build_object('emails', emails, 'phones', phones, 'user_ids', user_ids)::text"
        " FROM persons WHERE person_id = $1",
    ),
    ("merged_ids", _rows("SELECT old_id, merged_at FROM person_merges WHERE person_id = $1", "t.merged_at")),
    (
        "touchpoints",
        _rows(
            "SELECT event_id, occurred_at, event::jsonb AS event FROM touchpoints WHERE person_id = $1",
            "t.occurred_at, t.event_id",
        ),
    ),
    ("activities", _rows("SELECT * FROM activities WHERE person_id = $1", "t.created_at, t.id")),
    ("purchases", _rows("SELECT * FROM purchases WHERE person_id = $1", "t.created_at, t.id")),
    ("feedback", _rows("SELECT * FROM feedback WHERE person_id = $1", "t.created_at, t.id")),
    ("stage_history", _rows("SELECT * FROM stage_transitions WHERE person_id = $1", "t.id")),
    ("email_sends", _rows("SELECT * FROM email_sends WHERE person_id = $1", "t.created_at")),
    (
        "cases",
        _rows(
            "SELECT c.*,"
            " (SELECT coalesce(jsonb_agg(to_jsonb(m) ORDER BY m.created_at), '[]')"
            "    FROM case_comments m WHERE m.case_id = c.id) AS comments,"
            " (SELECT coalesce(jsonb_agg(to_jsonb(e) ORDER BY e.id), '[]')"
            "    FROM case_events e WHERE e.case_id = c.id) AS events"
            " FROM cases c WHERE c.person_id = $1",
            "t.created_at, t.id",
        ),
    ),
    ("contracts", _rows("SELECT * FROM service_contracts WHERE person_id = $1", "t.created_at, t.id")),
    (
        "deals",
        _rows(
            "SELECT d.*, (SELECT coalesce(jsonb_agg(to_jsonb(h) ORDER BY h.id), '[]')"
            "    FROM deal_stage_history h WHERE h.deal_id = d.id) AS stage_history"
            " FROM deals d WHERE d.person_id = $1",
            "t.created_at, t.id",
        ),
    ),
    ("tasks", _rows("SELECT * FROM tasks WHERE person_id = $1", "t.created_at, t.id")),
    (
        "audit",
        _rows(
            "SELECT id, at, actor, via, action, entity_type, entity_id, changes FROM audit_log"
            " WHERE (entity_type = 'persons' AND entity_id = $1::uuid::text) OR changes->>'person_id' = $1::uuid::text",
            "t.id",
        ),
    ),
)


async def _export(pool: asyncpg.Pool, person: uuid.UUID, caller: Caller) -> web.Response:
    """The export document of ``person`` as an attachment (404 naming the survivor of a merged-away id)."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM persons WHERE person_id = $1)", person):
            survivor = await conn.fetchval(queries.SURVIVOR, person)
            if survivor is not None:
                return problem(404, "Not Found", f"merged into person {survivor}", merged_into=str(survivor))
            raise web.HTTPNotFound(text="no such person")
        doc: dict[str, object] = {"person_id": str(person)}
        for key, sql in SECTIONS:
            doc[key] = orjson.Fragment(await conn.fetchval(sql, person))
    async with pool.acquire() as conn, conn.transaction():
        await audit.record(conn, caller, "export", "persons", person, {"exported": True})
    resp = json_response(doc)
    resp.headers["Content-Disposition"] = f'attachment; filename="person-{person}.json"'
    return resp


async def export_person(request: web.Request) -> web.Response:
    """GET /api/v1/persons/{id}/export: everything crm-core holds on the person, as one JSON document."""
    return await _export(request.app[POOL], uuid_param(request), request[CALLER])


async def export_page(request: web.Request) -> web.Response:
    """GET /app/persons/{id}/export: the person page's Export link (admins), the same document as the API's."""
    caller = await signed_in(request)
    if not may(caller, ADMIN):
        return forbidden(request)
    try:
        person = uuid.UUID(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound(reason="No such person") from None
    return await _export(request.app[POOL], person, caller)


def operations() -> list[Operation]:
    """The privacy operations on a person."""
    return [
        Operation(
            "GET",
            "/api/v1/persons/{id}/export",
            export_person,
            "Everything held on a person (profile, identifiers, touchpoints, records, cases, deals, audit) as one"
            " JSON document",
            ADMIN,
            "persons",
            params=(PERSON_ID,),
        ),
    ]
