"""Identity conflicts on a person, a rep's confirmed merge, and the merge history (issue 12).

The identity graph owns who is who: it never merges two persons that each hold an email (or a user id) on its
own, and announces every event that would have (a ``conflict`` change; crm-core keeps them in
``identity_conflicts``, ingest/conflicts.py). A rep who knows better confirms the merge here; crm-core does not
merge anything itself but asks the graph, through the outbox in the transaction that records the request
(``merge_requests``), with a ``merge`` raw event (``leadline_shared.events.merge_request``). The graph merges the
two, and its usual ``merge`` change comes back on identity.changes.v1: crm-core's merge handling
(ingest/identity.py) folds the merged person's history into the survivor, writes the ``person_merges`` row the
merge history shows, and resolves the conflict. The merge is therefore asynchronous: the API answers 202.

The survivor is the person the rep names, else the older one (seen first), so the longest history keeps its id.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

import asyncpg
from aiohttp import web

from leadline_crm import outbox
from leadline_crm.http import audit
from leadline_crm.http.auth import READ_ROLES, REPS, Caller
from leadline_crm.http.errors import BadRequest, Conflict
from leadline_crm.http.keys import BODY, CALLER, POOL
from leadline_crm.http.openapi import Operation, Param
from leadline_crm.http.pages import forbidden, may, signed_in
from leadline_crm.http.params import uuid_param
from leadline_crm.http.responses import json_response
from leadline_crm.http.schemas import UUID_S
from leadline_shared.events import merge_request
from leadline_shared.http import problem
from leadline_shared.ids import new_id

MERGERS = REPS
"""Who may merge two persons: admin, sales, service."""
LIST_MAX = 200

_OTHER = "CASE WHEN c.person_a = $1 THEN c.person_b ELSE c.person_a END"

CONFLICTS_OF = f"""
SELECT c.id, {_OTHER} AS other_person_id, c.identifier_type, c.seen, c.first_seen, c.last_seen, c.event_id,
       c.resolved_at, c.resolution, c.change_id,
       o.first_name, o.last_name, o.emails, o.person_id IS NOT NULL AS other_exists,
       o.erased_at IS NOT NULL AS other_erased,
       EXISTS (SELECT 1 FROM merge_requests r
                WHERE r.change_id IS NULL
                  AND ((r.survivor = $1 AND r.merged = {_OTHER}) OR (r.merged = $1 AND r.survivor = {_OTHER})))
           AS merge_pending
  FROM identity_conflicts c
  LEFT JOIN persons o ON o.person_id = {_OTHER}
 WHERE c.person_a = $1 OR c.person_b = $1
 ORDER BY c.resolved_at IS NOT NULL, c.last_seen DESC, c.id DESC
 LIMIT {LIST_MAX}
"""  # noqa: S608 (fixed text)

MERGES_OF = f"""
SELECT m.old_id AS person_id, m.change_id, m.merged_at, r.request_id, r.requested_by, r.requester, r.requested_at
  FROM person_merges m
  LEFT JOIN LATERAL (SELECT * FROM merge_requests q WHERE q.change_id = m.change_id LIMIT 1) r ON true
 WHERE m.person_id = $1
 ORDER BY m.merged_at DESC, m.old_id
 LIMIT {LIST_MAX}
"""  # noqa: S608 (fixed text)

# A request another merge overtook (the graph had already made the two one person) is answered by no change of
# its own: it is not pending once either person is gone.
PENDING_OF = f"""
SELECT request_id, survivor, merged, requested_by, requester, requested_at FROM merge_requests r
 WHERE change_id IS NULL AND (survivor = $1 OR merged = $1)
   AND EXISTS (SELECT 1 FROM persons WHERE person_id = r.survivor)
   AND EXISTS (SELECT 1 FROM persons WHERE person_id = r.merged)
 ORDER BY requested_at DESC
 LIMIT {LIST_MAX}
"""  # noqa: S608 (fixed text)

PAIR = """
SELECT person_id, coalesce(first_seen, created_at) AS since, erased_at IS NOT NULL AS erased FROM persons
 WHERE person_id = ANY($1::uuid[]) ORDER BY person_id FOR UPDATE
"""

SURVIVOR = "SELECT person_id FROM person_merges WHERE old_id = $1"

RECORD_REQUEST = """
INSERT INTO merge_requests (request_id, survivor, merged, requested_by, requester) VALUES ($1, $2, $3, $4, $5)
"""


class Missing(Exception):
    """A person that is not there (404); ``merged_into`` names its survivor when it was merged away."""

    def __init__(self, person: uuid.UUID, merged_into: uuid.UUID | None) -> None:
        where = f"; it was merged into person {merged_into}" if merged_into else ""
        super().__init__(f"no person {person}{where}")
        self.person = person
        self.merged_into = merged_into


def _name(first: str | None, last: str | None, emails: list[str] | None) -> str:
    return " ".join(filter(None, (first, last))) or (emails[0] if emails else "") or "(anonymous)"


async def _existing(conn: asyncpg.Connection | asyncpg.Pool, person: uuid.UUID) -> None:
    """:class:`Missing` unless crm-core holds ``person`` (erased persons are held: their facts are gone)."""
    if await conn.fetchval("SELECT 1 FROM persons WHERE person_id = $1", person) is None:
        raise Missing(person, await conn.fetchval(SURVIVOR, person))


async def conflicts_of(pool: asyncpg.Pool, person_id: uuid.UUID) -> list[dict[str, Any]]:
    """The person's identity conflicts, open ones first, newest first: the other person (id, name, whether it
    still exists or was erased), the identifier's type, how often and when it was seen, the last event's id,
    whether a merge of the two is pending, and for resolved ones when and how."""
    rows = await pool.fetch(CONFLICTS_OF, person_id)
    return [
        {
            "id": r["id"],
            "other_person_id": r["other_person_id"],
            "other_name": _name(r["first_name"], r["last_name"], r["emails"])
            if r["other_exists"] and not r["other_erased"]
            else "(erased)"
            if r["other_erased"]
            else "(not in the CRM yet)",
            "other_erased": r["other_erased"],
            "identifier_type": r["identifier_type"],
            "seen": r["seen"],
            "first_seen": r["first_seen"],
            "last_seen": r["last_seen"],
            "event_id": r["event_id"],
            "status": "open" if r["resolved_at"] is None else "resolved",
            "resolved_at": r["resolved_at"],
            "resolution": r["resolution"],
            "resolved_by_change": r["change_id"],
            "merge_pending": r["merge_pending"],
        }
        for r in rows
    ]


async def merges_of(pool: asyncpg.Pool, person_id: uuid.UUID) -> list[dict[str, Any]]:
    """Who was merged into the person (also through persons merged into it earlier), when, by which identity
    change, and whether a rep asked for it (``by`` "rep", with who and the request) or the graph did it on its
    own (``by`` "automatic": a cookie that turned out to be a known person, a rep's lead the graph knew)."""
    rows = await pool.fetch(MERGES_OF, person_id)
    return [
        {
            "person_id": r["person_id"],
            "merged_at": r["merged_at"],
            "change_id": r["change_id"],
            "by": "rep" if r["request_id"] else "automatic",
            "requested_by": r["requested_by"],
            "requester": r["requester"],
            "requested_at": r["requested_at"],
            "request_id": r["request_id"],
        }
        for r in rows
    ]


async def pending_merges_of(pool: asyncpg.Pool, person_id: uuid.UUID) -> list[dict[str, Any]]:
    """Merges of this person a rep asked for that the identity graph has not answered yet."""
    return [dict(r) for r in await pool.fetch(PENDING_OF, person_id)]


async def request_merge(
    pool: asyncpg.Pool,
    person: uuid.UUID,
    other: uuid.UUID,
    caller: Caller,
    survivor: uuid.UUID | None = None,
) -> dict[str, Any]:
    """Ask the identity graph to merge ``person`` and ``other`` (a rep confirmed they are one); what will happen.

    :class:`Missing` (404) for a person crm-core does not hold, Conflict (409) for an erased one, BadRequest (422)
    for a person merged with itself or a survivor that is neither. Both persons are locked while the request
    and its outbox message are written, so an erasure cannot slip in between the check and the request.
    """
    if other == person:
        raise BadRequest("other_person_id: a person cannot be merged with itself")
    if survivor is not None and survivor not in (person, other):
        raise BadRequest("survivor: must be the person or the other person")
    async with pool.acquire() as conn, conn.transaction():
        rows = {r["person_id"]: r for r in await conn.fetch(PAIR, [person, other])}
        for pid in (person, other):
            if pid not in rows:
                raise Missing(pid, await conn.fetchval(SURVIVOR, pid))
        erased = [str(pid) for pid in (person, other) if rows[pid]["erased"]]
        if erased:
            raise Conflict(
                f"person {' and '.join(erased)} was erased: an erased person cannot be merged",
                erased=erased,
            )
        if survivor is None:  # the older person keeps its id (ties: the page's person)
            older = min((person, other), key=lambda p: (rows[p]["since"], p != person))
            survivor = older
        merged = other if survivor == person else person
        request_id = new_id()
        await conn.execute(RECORD_REQUEST, request_id, survivor, merged, caller.label, caller.name)
        event = merge_request(str(survivor), [str(merged)], request_id)
        await outbox.write(conn, [("raw", f"crm_contact_id:{survivor}".encode(), event.to_json())])
        await audit.record(
            conn, caller, "merge", "persons", survivor, {"merged": str(merged), "request_id": request_id}
        )
    return {
        "status": "accepted",
        "request_id": request_id,
        "survivor_id": survivor,
        "merged_id": merged,
        "detail": f"person {merged} will be merged into person {survivor} by the identity graph: its emails,"
        " phones and history (touchpoints, activities, purchases, feedback, stage moves) move to the survivor,"
        " the merge shows in the survivor's merge history and their conflict is resolved. This takes a few"
        " seconds and cannot be undone.",
    }


# --- the API ---

PERSON_ID = Param("id", "path", UUID_S, "the person")
MERGE_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["other_person_id"],
    "properties": {
        "other_person_id": {**UUID_S, "description": "the person to merge with this one"},
        "confirm": {"type": "boolean", "description": "must be true: a merge cannot be undone"},
        "survivor_id": {
            **UUID_S,
            "description": "which of the two keeps its id (this person or the other); default: the older one",
        },
    },
}


def _missing(exc: Missing) -> web.Response:
    extra = {"merged_into": str(exc.merged_into)} if exc.merged_into else {}
    return problem(404, "Not Found", str(exc), **extra)


async def get_conflicts(request: web.Request) -> web.Response:
    """GET /api/v1/persons/{id}/conflicts."""
    person = uuid_param(request)
    pool = request.app[POOL]
    try:
        await _existing(pool, person)
    except Missing as exc:
        return _missing(exc)
    return json_response({"items": await conflicts_of(pool, person), "next": None})


async def get_merges(request: web.Request) -> web.Response:
    """GET /api/v1/persons/{id}/merges."""
    person = uuid_param(request)
    pool = request.app[POOL]
    try:
        await _existing(pool, person)
    except Missing as exc:
        return _missing(exc)
    items, pending = await merges_of(pool, person), await pending_merges_of(pool, person)
    return json_response({"items": items, "pending": pending, "next": None})


async def post_merge(request: web.Request) -> web.Response:
    """POST /api/v1/persons/{id}/merge: 202 with what will happen."""
    person = uuid_param(request)
    body = request[BODY]
    if body.get("confirm") is not True:
        raise BadRequest('confirm: a merge cannot be undone; send "confirm": true to merge the two persons')
    survivor = uuid.UUID(body["survivor_id"]) if body.get("survivor_id") else None
    try:
        answer = await request_merge(
            request.app[POOL], person, uuid.UUID(body["other_person_id"]), request[CALLER], survivor
        )
    except Missing as exc:
        return _missing(exc)
    return json_response(answer, status=202)


def operations() -> list[Operation]:
    """A person's identity conflicts, merge history, and the rep's confirmed merge."""
    return [
        Operation(
            "GET",
            "/api/v1/persons/{id}/conflicts",
            get_conflicts,
            "A person's identity conflicts (persons the identity graph would not merge with it), open ones first",
            READ_ROLES,
            "persons",
            params=(PERSON_ID,),
        ),
        Operation(
            "GET",
            "/api/v1/persons/{id}/merges",
            get_merges,
            "A person's merge history: who was merged into it, when, by which change, by a rep or automatically;"
            " and merges asked for and not done yet (pending)",
            READ_ROLES,
            "persons",
            params=(PERSON_ID,),
        ),
        Operation(
            "POST",
            "/api/v1/persons/{id}/merge",
            post_merge,
            "Merge another person with this one (confirmed by a rep; asynchronous: 202, done by the identity"
            " graph within seconds)",
            MERGERS,
            "persons",
            params=(PERSON_ID,),
            body=MERGE_BODY,
            status=202,
            errors=(409,),
        ),
    ]


# --- the web app ---


async def merge_page_post(request: web.Request) -> web.Response:
    """POST /app/persons/{id}/merge (form: other_person_id, confirm, keep = older | this | other): back to the
    person's page with a notice saying what will happen, or why not."""
    caller = await signed_in(request)
    if not may(caller, MERGERS):
        return forbidden(request)
    try:
        person = uuid.UUID(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound(reason="No such person") from None
    form = await request.post()
    back = f"/app/persons/{person}"
    try:
        other = uuid.UUID(str(form.get("other_person_id", "")))
    except ValueError:
        raise _back(back, "Nothing merged: choose the person to merge with.") from None
    if form.get("confirm") not in ("1", "on", "true", "yes"):
        raise _back(back, "Nothing merged: tick the box to confirm that both are the same person.")
    survivor = {"this": person, "other": other}.get(str(form.get("keep", "older")))
    try:
        answer = await request_merge(request.app[POOL], person, other, caller, survivor)
    except Missing as exc:
        if exc.person == person:
            raise web.HTTPNotFound(reason="No such person") from None
        raise _back(back, f"Nothing merged: {exc}.") from None
    except (BadRequest, Conflict) as exc:
        raise _back(back, f"Nothing merged: {exc}.") from None
    raise _back(
        f"/app/persons/{answer['survivor_id']}",
        f"Merge requested: person {answer['merged_id']} and its history move to this person within seconds.",
    )


def _back(path: str, notice: str) -> web.HTTPSeeOther:
    """The redirect to a person's page showing ``notice``."""
    return web.HTTPSeeOther(f"{path}?{urlencode({'notice': notice})}")


def pages() -> list[web.RouteDef]:
    """The merge form's target (the person page includes people/_conflicts.html and people/_merges.html)."""
    return [web.post("/app/persons/{id}/merge", merge_page_post)]
