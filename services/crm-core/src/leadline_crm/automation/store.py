"""Saving and reading workflow rules and their runs, shared by the API and the pages; every change audited and
announced (the loop notices the rules' signature move and recompiles them)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

import asyncpg

from leadline_crm.automation import queries
from leadline_crm.automation.conditions import InvalidCondition, compile_all
from leadline_crm.automation.rules import trigger_matcher
from leadline_crm.http import audit
from leadline_crm.http.auth import Caller
from leadline_crm.http.errors import BadRequest

FIELDS = ("name", "enabled", "trigger_type", "trigger_params", "conditions", "actions", "delay_seconds",
          "unless_activity")  # fmt: skip
JSON_FIELDS = ("trigger_params", "conditions", "actions")
DEFAULTS: dict[str, Any] = {"enabled": False, "trigger_params": {}, "conditions": [], "delay_seconds": 0,
                            "unless_activity": None}  # fmt: skip


def check(values: Mapping[str, Any]) -> None:
    """What the schema cannot say: the conditions compile, the trigger's threshold fits its type (422 else)."""
    try:
        compile_all(values.get("conditions", []))
        trigger_matcher(values["trigger_type"], values.get("trigger_params", {}))
    except (InvalidCondition, ValueError) as exc:
        raise BadRequest(f"conditions: {exc}") from None
    if "threshold" in values.get("trigger_params", {}) and values["trigger_type"] != "score.changed":
        raise BadRequest("trigger_params.threshold: only a score.changed trigger has a threshold")


def rule_doc(row: Mapping[str, Any]) -> dict[str, Any]:
    """A rule as the API shows it."""
    doc = dict(row)
    for f in JSON_FIELDS:
        if isinstance(doc.get(f), str):
            doc[f] = json.loads(doc[f])
    return doc


def _args(values: Mapping[str, Any]) -> list[Any]:
    """The statement's arguments: the JSON fields as Python values, which the pool's jsonb codec encodes (text
    given to it would be stored as one JSON string; migration 0052 unwrapped the rules saved that way)."""
    return [values[f] for f in FIELDS]


async def create(pool: asyncpg.Pool, body: Mapping[str, Any], caller: Caller) -> dict[str, Any]:
    """Save a new rule (audited)."""
    values = {**DEFAULTS, **body}
    check(values)
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(queries.CREATE_RULE, *_args(values), caller.user_id)
        doc = rule_doc(row)
        await audit.record(conn, caller, "create", "workflow_rules", doc["id"], audit.values(doc, FIELDS))
        await conn.execute(queries.WAKE)
    return doc


async def update(
    pool: asyncpg.Pool, rule_id: int, body: Mapping[str, Any], caller: Caller
) -> dict[str, Any] | None:
    """Change a rule (audited); None when there is none."""
    async with pool.acquire() as conn, conn.transaction():
        old = await conn.fetchrow(queries.RULE_FOR_UPDATE, rule_id)
        if old is None:
            return None
        values = {**rule_doc(old), **body}
        check(values)
        row = await conn.fetchrow(queries.UPDATE_RULE, rule_id, *_args(values))
        doc = rule_doc(row)
        await audit.record(
            conn, caller, "update", "workflow_rules", rule_id, audit.diff(rule_doc(old), doc, FIELDS)
        )
        await conn.execute(queries.WAKE)
    return doc


async def delete(pool: asyncpg.Pool, rule_id: int, caller: Caller) -> bool:
    """Delete a rule and its run log (audited)."""
    async with pool.acquire() as conn, conn.transaction():
        old = await conn.fetchrow(queries.DELETE_RULE, rule_id)
        if old is None:
            return False
        await audit.record(conn, caller, "delete", "workflow_rules", rule_id, {"name": old["name"]})
    return True


async def get(pool: asyncpg.Pool | asyncpg.Connection, rule_id: int) -> dict[str, Any] | None:
    """One rule, or None."""
    row = await pool.fetchrow(queries.RULE, rule_id)
    return rule_doc(row) if row else None


async def all_rules(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    """Every rule with its last run's time and its run count, by name."""
    return [rule_doc(r) for r in await pool.fetch(queries.RULES_PAGE)]


async def runs(
    pool: asyncpg.Pool, rule_id: int | None, person: uuid.UUID | None, limit: int
) -> list[dict[str, Any]]:
    """A rule's or a person's runs, newest first."""
    rows = await pool.fetch(queries.RUNS, rule_id, person, limit)
    return [dict(r) | {"actions_done": json.loads(r["actions_done"]) if isinstance(r["actions_done"], str)
                       else r["actions_done"]} for r in rows]  # fmt: skip
