"""Deals in pipelines: creation and changes shared by the API and the web app (issue 15).

A deal sits in one stage of one pipeline; a stage that is not in the deal's pipeline, or a pipeline that does not
exist, is refused (422) before anything is written. Moving a deal to a stage of kind ``won`` or ``lost`` closes
it (``status``, ``closed_at``; a lost deal needs a reason); moving it back to an open stage reopens it. Every
stage change is a row of ``deal_stage_history`` and an audit entry, in the change's transaction, and shows on the
person's timeline.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import asyncpg
from aiohttp import web

from leadline_crm.automation import events as domain_events
from leadline_crm.http import audit
from leadline_crm.http.auth import SALES, Caller
from leadline_crm.http.errors import BadRequest
from leadline_crm.http.schemas import DATE, MONEY, UUID_S
from leadline_crm.sales import queries

WRITERS = SALES
AUDITED = ("title", "person_id", "company_id", "amount", "currency", "pipeline_id", "stage_id", "expected_close_on",
           "owner_id", "status", "close_reason")  # fmt: skip
FIELDS: dict[str, Any] = {
    "title": {"type": "string", "minLength": 1, "maxLength": 200},
    "person_id": UUID_S,
    "company_id": UUID_S,
    "amount": MONEY,
    "currency": {"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217, e.g. EUR"},
    "pipeline_id": {**UUID_S, "description": "default: the default pipeline"},
    "stage_id": {**UUID_S, "description": "a stage of the deal's pipeline; default: its first open stage"},
    "stage": {"type": "string", "maxLength": 100, "description": "the stage by name, instead of stage_id"},
    "expected_close_on": DATE,
    "owner_id": {**UUID_S, "description": "default: the calling rep"},
    "reason": {"type": "string", "maxLength": 1000, "description": "why it moved; required to lose a deal"},
}
NULLABLE = ("person_id", "company_id", "expected_close_on", "owner_id")
CREATE_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["title"],
    "properties": FIELDS,
    "description": "give a person_id or a company_id (or both)",
}
PATCH_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {k: ({"anyOf": [v, {"type": "null"}]} if k in NULLABLE else v) for k, v in FIELDS.items()},
}


def _uuid(value: Any, field: str) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise BadRequest(f"{field}: not a UUID") from None


async def _stage(
    conn: asyncpg.Connection, pipeline: uuid.UUID, stage_id: Any, name: str | None
) -> asyncpg.Record:
    """The stage chosen by id or name within ``pipeline`` (422 when it is not one of its stages), else its first
    open stage."""
    if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pipelines WHERE id = $1)", pipeline):
        raise BadRequest("pipeline_id: no such pipeline")
    if stage_id is not None:
        row = await conn.fetchrow(queries.STAGE_IN, pipeline, _uuid(stage_id, "stage_id"))
        if row is None:
            raise BadRequest("stage_id: not a stage of this deal's pipeline")
        return row
    if name is not None:
        row = await conn.fetchrow(queries.STAGE_BY_NAME, pipeline, name)
        if row is None:
            raise BadRequest(f"stage: no stage named {name!r} in this deal's pipeline")
        return row
    row = await conn.fetchrow(queries.FIRST_OPEN_STAGE, pipeline)
    if row is None:
        raise BadRequest("pipeline_id: this pipeline has no open stage")
    return row


def _closing(stage: asyncpg.Record, reason: str | None) -> tuple[str, str | None]:
    """The status a deal in ``stage`` has, and its close reason (a lost deal must say why)."""
    if stage["kind"] == "lost" and not reason:
        raise BadRequest("reason: say why the deal was lost")
    return stage["kind"], (reason or None) if stage["kind"] != "open" else None


async def create_deal(pool: asyncpg.Pool, body: dict[str, Any], caller: Caller) -> asyncpg.Record:
    """Create a deal from a body valid against :data:`CREATE_BODY` (API and web app)."""
    person, company = _uuid(body.get("person_id"), "person_id"), _uuid(body.get("company_id"), "company_id")
    if person is None and company is None:
        raise BadRequest("give a person_id or a company_id: a deal is with someone")
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        pipeline = _uuid(body.get("pipeline_id"), "pipeline_id") or await conn.fetchval(
            queries.DEFAULT_PIPELINE
        )
        stage = await _stage(conn, pipeline, body.get("stage_id"), body.get("stage"))
        status, reason = _closing(stage, body.get("reason"))
        owner = _uuid(body.get("owner_id"), "owner_id") or (
            caller.user_id if caller.role == "sales" else None
        )
        close_on = date.fromisoformat(body["expected_close_on"]) if body.get("expected_close_on") else None
        deal = await conn.fetchval(
            "INSERT INTO deals (title, person_id, company_id, amount, currency, pipeline_id, stage_id,"
            " expected_close_on, owner_id, status, close_reason, closed_at, stage_at, created_at, updated_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::text, $11,"
            " CASE WHEN $10::text = 'open' THEN NULL ELSE $12::timestamptz END,"
            " $12, $12, $12) RETURNING id",
            body["title"], person, company, Decimal(str(body.get("amount", 0))).quantize(Decimal("0.01")),
            body.get("currency") or "EUR", pipeline, stage["id"], close_on, owner, status, reason, now,
        )  # fmt: skip
        await conn.execute(
            queries.INSERT_HISTORY, deal, None, stage["id"], None, stage["name"], now, caller.label, "created"
        )
        row: asyncpg.Record = await conn.fetchrow(queries.DEAL, deal)
        await audit.record(conn, caller, "create", "deals", deal, audit.values(row, AUDITED))
    return row


async def change_deal(
    pool: asyncpg.Pool, deal: uuid.UUID, body: dict[str, Any], caller: Caller
) -> asyncpg.Record:
    """Apply a body valid against :data:`PATCH_BODY` (API, web forms, the board's moves); 404 for no such deal."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        old = await conn.fetchrow("SELECT * FROM deals WHERE id = $1 FOR UPDATE", deal)
        if old is None:
            raise web.HTTPNotFound(text="no such deal")
        sets: dict[str, Any] = {}
        for key in ("title", "currency"):
            if key in body:
                sets[key] = body[key]
        for key in ("person_id", "company_id", "owner_id"):
            if key in body:
                sets[key] = _uuid(body[key], key)
        if "amount" in body:
            sets["amount"] = Decimal(str(body["amount"])).quantize(Decimal("0.01"))
        if "expected_close_on" in body:
            sets["expected_close_on"] = (
                date.fromisoformat(body["expected_close_on"]) if body["expected_close_on"] else None
            )
        pipeline = _uuid(body.get("pipeline_id"), "pipeline_id") or old["pipeline_id"]
        moving = pipeline != old["pipeline_id"] or "stage_id" in body or "stage" in body
        if moving:
            stage = await _stage(conn, pipeline, body.get("stage_id"), body.get("stage"))
            status, reason = _closing(stage, body.get("reason"))
            if stage["id"] != old["stage_id"]:
                from_name = await conn.fetchval(
                    "SELECT name FROM pipeline_stages WHERE id = $1", old["stage_id"]
                )
                await conn.execute(
                    queries.INSERT_HISTORY, deal, old["stage_id"], stage["id"], from_name, stage["name"], now,
                    caller.label, body.get("reason"),
                )  # fmt: skip
                await domain_events.deal_moved(conn, {**old, **sets}, stage, from_name)
            sets |= {
                "pipeline_id": pipeline,
                "stage_id": stage["id"],
                "status": status,
                "close_reason": reason,
            }
            if status == "open":
                sets["closed_at"] = None
            elif old["status"] == "open":
                sets["closed_at"] = now
            if stage["id"] != old["stage_id"]:
                sets["stage_at"] = now
        if sets:
            assignments = ", ".join(f"{k} = ${i}" for i, k in enumerate(sets, 2))
            await conn.execute(
                f"UPDATE deals SET {assignments}, updated_at = now() WHERE id = $1",  # noqa: S608 (fixed names)
                deal,
                *sets.values(),
            )
        row: asyncpg.Record = await conn.fetchrow(queries.DEAL, deal)
        changes: dict[str, Any] = audit.diff(old, row, AUDITED)
        if changes and body.get("reason"):
            changes["reason"] = body["reason"]
        if changes:
            await audit.record(conn, caller, "update", "deals", deal, changes)
    return row


async def create_pipeline(pool: asyncpg.Pool, body: dict[str, Any], caller: Caller) -> uuid.UUID:
    """A pipeline with its stages in the order given (at least one open stage)."""
    if not any(s.get("kind", "open") == "open" for s in body["stages"]):
        raise BadRequest("stages: a pipeline needs at least one open stage")
    names = [s["name"] for s in body["stages"]]
    if len(set(names)) != len(names):
        raise BadRequest("stages: two stages share a name")
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pipelines WHERE name = $1)", body["name"]):
            raise BadRequest("name: a pipeline with this name exists")
        row = await conn.fetchrow(queries.INSERT_PIPELINE, body["name"])
        for position, s in enumerate(body["stages"], 1):
            await conn.execute(
                queries.INSERT_STAGE, row["id"], s["name"], position, Decimal(str(s["probability"])),
                s.get("kind", "open"),
            )  # fmt: skip
        await audit.record(
            conn, caller, "create", "pipelines", row["id"], {"name": body["name"], "stages": names}
        )
    pipeline: uuid.UUID = row["id"]
    return pipeline


PIPELINE_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "stages"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 100},
        "stages": {
            "type": "array",
            "minItems": 1,
            "maxItems": 30,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "probability"],
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 100},
                    "probability": {"type": "number", "minimum": 0, "maximum": 100},
                    "kind": {"enum": ["open", "won", "lost"], "default": "open"},
                },
            },
        },
    },
}
