"""Privacy in the product (issue 14): an admin exports everything crm-core holds on a person as one JSON document.

``GET /api/v1/persons/{id}/export`` reads, in one repeatable-read transaction, the person's row (profile,
identifiers and consent), its touchpoints (the stored event JSON), activities, purchases, feedback, stage history,
email sends, cases with their comments and events, service contracts, deals with their stage history, tasks, the
ids merged into it and the audit entries about it. Each section is built by PostgreSQL as JSON text and sent as is.
A merged-away id answers 404 naming the survivor, as the other person routes do. The export is itself audited
(``export`` on the person, holding no personal data).

``POST /api/v1/persons/{id}/erase`` does what ``leadline erase --person`` does, from the product: in one
transaction crm-core applies an ``erase`` change to itself (ingest/identity.apply_changes: the same statements the
graph's erase change runs, so the person's facts go at once), records the erasure (``erasures``: who, when, the
request reference, the person id; nothing personal), and owes the identity graph an ``erase`` request through the
outbox (events.erase_request). The graph tombstones the person's identifiers, as the command does, and answers
with its own ``erase`` change, which crm-core applies again: touchpoints that were in flight are scrubbed then,
and later events carrying the identifiers stay anonymous. Copies on the raw, enriched and dead-letter topics
expire with their retention, which the answer states. A second request for an erased person answers 409.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from aiohttp import web

from leadline_crm import outbox
from leadline_crm.http import audit
from leadline_crm.http.auth import ADMIN, Caller
from leadline_crm.http.errors import Conflict
from leadline_crm.http.keys import BODY, CALLER, POOL
from leadline_crm.http.openapi import Operation, Param
from leadline_crm.http.pages import forbidden, may, signed_in
from leadline_crm.http.params import uuid_param
from leadline_crm.http.responses import json_response
from leadline_crm.http.schemas import UUID_S
from leadline_crm.ingest.identity import apply_changes
from leadline_crm.people import queries
from leadline_shared import kafka
from leadline_shared.events import IdentityChange, erase_request
from leadline_shared.http import problem
from leadline_shared.ids import new_id

#: The topics, for the retention the erase answer states (set by create_app).
TOPICS = web.AppKey("crm_topics", kafka.Topics)

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
    # what the person agreed to, per purpose, when and where (people/consent.py); also in the profile
    ("consent", "SELECT coalesce(consent, '{}')::text FROM persons WHERE person_id = $1"),
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
    (
        "workflow_runs",
        _rows("SELECT * FROM rule_runs WHERE person_id = $1", "t.id"),
    ),  # automation/ (issue 16)
    (
        "lists",
        _rows(
            "SELECT l.name, m.added_at FROM list_members m JOIN lists l ON l.id = m.list_id"
            " WHERE m.person_id = $1",
            "t.added_at",
        ),
    ),
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


ERASE_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["reference"],
    "properties": {
        "reference": {
            "type": "string",
            "minLength": 1,
            "maxLength": 200,
            "description": "the erasure request's reference (a ticket number; no personal data)",
        }
    },
}

RECORD_ERASURE = """INSERT INTO erasures (person_id, request_id, reference, requested_by, via, requested_at)
VALUES ($1, $2, $3, $4, $5, $6)"""


class Missing(Exception):
    """No such person; ``survivor`` when the id was merged into another."""

    def __init__(self, survivor: uuid.UUID | None) -> None:
        super().__init__("no such person")
        self.survivor = survivor


async def erase(
    pool: asyncpg.Pool, person: uuid.UUID, reference: str, caller: Caller, topics: kafka.Topics
) -> dict[str, Any]:
    """Erase ``person`` in crm-core now, record the erasure and ask the identity graph to erase it too.

    :class:`Missing` for an unknown (or merged-away) id, :class:`Conflict` for a person already erased.
    """
    now = datetime.now(UTC)
    request_id = new_id()
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow("SELECT erased_at FROM persons WHERE person_id = $1 FOR UPDATE", person)
        if row is None:
            raise Missing(await conn.fetchval(queries.SURVIVOR, person))
        done = await conn.fetchval("SELECT requested_at FROM erasures WHERE person_id = $1", person)
        if row["erased_at"] is not None or done is not None:
            raise Conflict(
                f"person {person} was already erased", erased_at=(done or row["erased_at"]).isoformat()
            )
        at = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        change = IdentityChange(change_id=request_id, kind="erase", person_id=str(person), at=at)
        await apply_changes(conn, [change], now)
        await conn.execute(RECORD_ERASURE, person, request_id, reference, caller.label, caller.via, now)
        event = erase_request(str(person), request_id)
        await outbox.write(conn, [("raw", f"crm_contact_id:{person}".encode(), event.to_json())])
        await audit.record(conn, caller, "erase", "persons", person, {"request_id": request_id})
    return {
        "status": "accepted",
        "request_id": request_id,
        "person_id": str(person),
        "erased_at": now,
        "detail": f"person {person}'s personal data is erased from the CRM now (facts, identifiers, touchpoints'"
        " personal fields, notes, feedback text, purchase instructions, case texts and comments, deal and task"
        " titles; the audit log keeps only that records changed). The identity graph tombstones the person's"
        " identifiers within seconds, so later events carrying them stay anonymous and never rebuild the"
        " person. Anonymous facts (counts, stage, amounts) stay. This cannot be undone.",
        "retention": kafka.retention_note(topics),
    }


async def erase_person(request: web.Request) -> web.Response:
    """POST /api/v1/persons/{id}/erase: 202 with what happens; 409 when already erased."""
    person = uuid_param(request)
    try:
        doc = await erase(
            request.app[POOL], person, request[BODY]["reference"], request[CALLER], request.app[TOPICS]
        )
    except Missing as exc:
        if exc.survivor is not None:
            return problem(
                404, "Not Found", f"merged into person {exc.survivor}", merged_into=str(exc.survivor)
            )
        raise web.HTTPNotFound(text="no such person") from None
    return json_response(doc, status=202)


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
        Operation(
            "POST",
            "/api/v1/persons/{id}/erase",
            erase_person,
            "Erase a person's personal data (GDPR), here and in the identity graph, with an erasure record",
            ADMIN,
            "persons",
            params=(PERSON_ID,),
            body=ERASE_BODY,
            status=202,
            errors=(409,),
        ),
    ]
