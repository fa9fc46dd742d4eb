"""The workflow rules' API: CRUD under /api/v1/workflow-rules (admins and marketers), a dry run on a person, and
the run logs per rule and per person."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from leadline_crm.automation import rules, schema, store
from leadline_crm.http.auth import MARKETING, READ_ROLES
from leadline_crm.http.keys import BODY, CALLER, POOL
from leadline_crm.http.openapi import Operation, Param
from leadline_crm.http.params import LIMIT, page_limit
from leadline_crm.http.responses import json_response
from leadline_crm.http.schemas import UUID_S

RULE_ID = Param("id", "path", {"type": "integer", "minimum": 1}, "the rule's id")
PERSON_ID = Param("id", "path", UUID_S, "the person's id")


def _rule_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        raise web.HTTPNotFound(text="no such workflow rule")
    return int(raw)


def _found(doc: Any) -> Any:
    if doc is None:
        raise web.HTTPNotFound(text="no such workflow rule")
    return doc


async def list_rules(request: web.Request) -> web.Response:
    """GET /api/v1/workflow-rules: every rule, with its last run's time and run count."""
    return json_response({"items": await store.all_rules(request.app[POOL]), "next": None})


async def create_rule(request: web.Request) -> web.Response:
    """POST /api/v1/workflow-rules: 201 with the rule (switched off unless ``enabled``)."""
    body: dict[str, Any] = request[BODY]
    doc = await store.create(request.app[POOL], body, request[CALLER])
    return json_response(doc, status=201)


async def get_rule(request: web.Request) -> web.Response:
    """GET /api/v1/workflow-rules/{id}."""
    return json_response(_found(await store.get(request.app[POOL], _rule_id(request))))


async def update_rule(request: web.Request) -> web.Response:
    """PATCH /api/v1/workflow-rules/{id}: the fields given (the whole rule checked again)."""
    body: dict[str, Any] = request[BODY]
    doc = await store.update(request.app[POOL], _rule_id(request), body, request[CALLER])
    return json_response(_found(doc))


async def delete_rule(request: web.Request) -> web.Response:
    """DELETE /api/v1/workflow-rules/{id}: with its run log."""
    if not await store.delete(request.app[POOL], _rule_id(request), request[CALLER]):
        raise web.HTTPNotFound(text="no such workflow rule")
    return web.Response(status=204)


async def test_rule(request: web.Request) -> web.Response:
    """POST /api/v1/workflow-rules/{id}/test {person_id}: what the rule would do for the person now; changes
    nothing (it only reads)."""
    doc = _found(await store.get(request.app[POOL], _rule_id(request)))
    person = uuid.UUID(request[BODY]["person_id"])
    async with request.app[POOL].acquire() as conn:
        result = await rules.dry_run(conn, rules.Rule.of(doc), person)
    if not result["found"]:
        raise web.HTTPNotFound(text="no such person")
    return json_response({k: v for k, v in result.items() if k != "found"})


async def rule_runs(request: web.Request) -> web.Response:
    """GET /api/v1/workflow-rules/{id}/runs: the rule's run log, newest first."""
    rule_id = _rule_id(request)
    _found(await store.get(request.app[POOL], rule_id))
    items = await store.runs(request.app[POOL], rule_id, None, page_limit(request, 100, 500))
    return json_response({"items": items, "next": None})


async def person_runs(request: web.Request) -> web.Response:
    """GET /api/v1/persons/{id}/workflow-runs: the runs about one person, newest first."""
    try:
        person = uuid.UUID(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound(text="no such person") from None
    items = await store.runs(request.app[POOL], None, person, page_limit(request, 100, 500))
    return json_response({"items": items, "next": None})


def operations() -> list[Operation]:
    """The workflow rules' operations."""
    tag = "automation"
    return [
        Operation("GET", "/api/v1/workflow-rules", list_rules, "Workflow rules", READ_ROLES, tag),
        Operation("POST", "/api/v1/workflow-rules", create_rule, "Create a workflow rule", MARKETING, tag,
                  body=schema.RULE_BODY, status=201),
        Operation("GET", "/api/v1/workflow-rules/{id}", get_rule, "A workflow rule", READ_ROLES, tag,
                  params=(RULE_ID,)),
        Operation("PATCH", "/api/v1/workflow-rules/{id}", update_rule, "Change a workflow rule", MARKETING, tag,
                  params=(RULE_ID,), body=schema.PATCH_BODY),
        Operation("DELETE", "/api/v1/workflow-rules/{id}", delete_rule, "Delete a workflow rule and its runs",
                  MARKETING, tag, params=(RULE_ID,), status=204),
        Operation("POST", "/api/v1/workflow-rules/{id}/test", test_rule,
                  "What the rule would do for a person now (changes nothing)", MARKETING, tag,
                  params=(RULE_ID,), body=schema.TEST_BODY),
        Operation("GET", "/api/v1/workflow-rules/{id}/runs", rule_runs, "A rule's run log", READ_ROLES, tag,
                  params=(RULE_ID, LIMIT)),
        Operation("GET", "/api/v1/persons/{id}/workflow-runs", person_runs, "A person's workflow runs", READ_ROLES,
                  tag, params=(PERSON_ID, LIMIT)),
    ]  # fmt: skip
