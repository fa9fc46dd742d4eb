"""Consent per person (issue 14): marketing and analytics, each granted or withdrawn, by the snippet's consent call
or a form's checkboxes (the events' ``context.consent``, folded in by ingestion) or by an agent (the person page,
``PUT /api/v1/persons/{id}/consent``).

The state lives on the person's row (``persons.consent``, migration 0033), one entry per purpose with when and
where it was said; the newest statement wins, so an old event replayed or arriving late cannot undo a later
withdrawal. Exports carry it with the profile. What honours it: the export shows it; the send side (automation's
emails) reads :func:`granted`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson
from aiohttp import web

from leadline_crm.http import audit
from leadline_crm.http.auth import REPS, Caller
from leadline_crm.http.errors import BadRequest
from leadline_crm.http.keys import BODY, CALLER, POOL
from leadline_crm.http.openapi import Operation, Param
from leadline_crm.http.responses import json_response
from leadline_crm.http.schemas import UUID_S

if TYPE_CHECKING:
    from leadline_crm.ingest.touch import Touch

PURPOSES = ("marketing", "analytics")

# Per person ($1) a statement per purpose ($2, jsonb): kept where it is newer than (or as new as) the one held.
APPLY = """
UPDATE persons p
   SET consent = p.consent || (
           SELECT coalesce(jsonb_object_agg(n.k, n.v), '{}') FROM jsonb_each(x.said) AS n(k, v)
            WHERE p.consent -> n.k IS NULL
               OR (p.consent -> n.k ->> 'at')::timestamptz <= (n.v ->> 'at')::timestamptz),
       updated_at = now()
  FROM (SELECT unnest($1::uuid[]) AS person_id, unnest($2::text[])::jsonb AS said) AS x
 WHERE p.person_id = x.person_id AND p.erased_at IS NULL
RETURNING p.person_id, p.consent
"""

CONSENT_OF = "SELECT consent FROM persons WHERE person_id = $1"


def _statement(granted: bool, at: datetime, source: str) -> dict[str, Any]:
    return {"granted": granted, "at": at.isoformat(), "source": source}


def from_touches(touches: Iterable[Touch]) -> dict[str, dict[str, dict[str, Any]]]:
    """Each person's newest statement per purpose among the events (a bot's events state nothing)."""
    said: dict[str, dict[str, dict[str, Any]]] = {}
    for t in touches:
        context = t.doc.get("context")
        flags = context.get("consent") if isinstance(context, dict) else None
        if t.automated or not isinstance(flags, dict):
            continue
        source = "form" if t.source == "form" else "snippet" if t.source == "beacon" else t.source
        for purpose in PURPOSES:
            value = flags.get(purpose)
            if isinstance(value, bool):
                held = said.setdefault(t.person_id, {}).get(purpose)
                if held is None or held["at"] <= t.occurred.isoformat():
                    said[t.person_id][purpose] = _statement(value, t.occurred, source)
    return said


async def record(conn: asyncpg.Connection, touches: Iterable[Touch]) -> None:
    """Fold the events' consent statements into their persons (ingestion's transaction)."""
    said = from_touches(touches)
    if said:
        await conn.execute(
            APPLY, [uuid.UUID(p) for p in said], [orjson.dumps(s).decode() for s in said.values()]
        )


async def of(pool: asyncpg.Pool, person: uuid.UUID) -> dict[str, Any]:
    """The person's consent per purpose (absent: never stated)."""
    value = await pool.fetchval(CONSENT_OF, person)
    return value if isinstance(value, dict) else {}


def granted(consent: Mapping[str, Any], purpose: str) -> bool:
    """Whether ``purpose`` is granted (never stated counts as not granted)."""
    entry = consent.get(purpose)
    return isinstance(entry, dict) and entry.get("granted") is True


async def set_by(
    pool: asyncpg.Pool, person: uuid.UUID, flags: Mapping[str, bool], caller: Caller
) -> dict[str, Any]:
    """An agent's (or a program's) statement, now; audited. :class:`LookupError` for an unknown or erased person."""
    source = "agent" if caller.via == "ui" else "api"
    now = datetime.now(UTC)
    said = {p: _statement(v, now, source) for p, v in flags.items() if p in PURPOSES}
    if not said:
        raise BadRequest(f"give at least one of {', '.join(PURPOSES)} as true or false")
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(APPLY, [person], [orjson.dumps(said).decode()])
        if row is None:
            raise LookupError(person)
        await audit.record(
            conn, caller, "consent", "persons", person, {p: s["granted"] for p, s in said.items()}
        )
    consent: dict[str, Any] = row["consent"]
    return consent


CONSENT_BODY = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {p: {"type": "boolean"} for p in PURPOSES},
}


async def put_consent(request: web.Request) -> web.Response:
    """PUT /api/v1/persons/{id}/consent: set marketing and/or analytics consent."""
    try:
        person = uuid.UUID(request.match_info["id"])
        body: dict[str, Any] = request[BODY]
        consent = await set_by(request.app[POOL], person, body, request[CALLER])
    except (ValueError, LookupError):
        raise web.HTTPNotFound(text="no such person") from None
    return json_response({"person_id": str(person), "consent": consent})


async def get_consent(request: web.Request) -> web.Response:
    """GET /api/v1/persons/{id}/consent."""
    try:
        person = uuid.UUID(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound(text="no such person") from None
    return json_response({"person_id": str(person), "consent": await of(request.app[POOL], person)})


def operations() -> list[Operation]:
    """Consent on a person, read and set."""
    pid = Param("id", "path", UUID_S, "the person")
    return [
        Operation("GET", "/api/v1/persons/{id}/consent", get_consent, "A person's consent per purpose",
                  frozenset({"admin", "sales", "service", "marketing"}), "persons", params=(pid,)),
        Operation("PUT", "/api/v1/persons/{id}/consent", put_consent,
                  "Record a person's consent (marketing, analytics) as an agent or a program", REPS, "persons",
                  params=(pid,), body=CONSENT_BODY),
    ]  # fmt: skip
