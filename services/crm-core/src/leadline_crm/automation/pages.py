"""The automation pages: the rules list with on/off switches and last runs (/app/automation), the rule form (a
trigger, condition rows, action rows: no code, no script), a rule's page with its run log and a "test on a
person" form, and the workspace's notices (/app/notifications).

Changes go through store.py, which the API uses, checked against the API's JSON Schema with the API's roles; a
role that may not gets a readable 403 page, a bad rule the form again with a 422 and the message.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from leadline_crm import lifecycle
from leadline_crm.automation import form, queries, rules, schema, store
from leadline_crm.automation.actions import ACTION_TYPES
from leadline_crm.automation.actions import describe as describe_action
from leadline_crm.automation.conditions import OPS
from leadline_crm.automation.conditions import describe as describe_condition
from leadline_crm.automation.events import EVENT_TYPES
from leadline_crm.http import forms
from leadline_crm.http.auth import MARKETING, Caller
from leadline_crm.http.errors import BadRequest
from leadline_crm.http.keys import POOL
from leadline_crm.http.pages import may, signed_in
from leadline_crm.http.templating import render

NO_RULE = "No workflow rule has this id."


async def _manager(request: web.Request) -> Caller:
    caller = await signed_in(request)
    if not may(caller, MARKETING):
        raise web.HTTPForbidden(reason="Only admins and marketers manage workflow rules")
    return caller


def _rule_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        raise web.HTTPNotFound(reason=NO_RULE)
    return int(raw)


async def rule_list(request: web.Request) -> web.Response:
    """GET /app/automation: every rule, its switch, its last run."""
    await _manager(request)
    return render(request, "automation/rules.html", title="Automation", notice=request.query.get("notice"),
                  rules=await store.all_rules(request.app[POOL]))  # fmt: skip


async def _form_page(
    request: web.Request, values: dict[str, Any], action: str, message: str | None = None, status: int = 200
) -> web.Response:
    users = await request.app[POOL].fetch(queries.ACTIVE_USERS)
    return render(
        request, "automation/rule_form.html", status=status, title="Workflow rule", message=message,
        values=values, action=action, triggers=[("", "choose…"), *((t, t) for t in EVENT_TYPES)],
        trigger_value=form.TRIGGER_VALUE, ops=[("", "—"), *((o, o) for o in OPS)], fields=form.FIELD_CHOICES,
        action_types=[("", "—"), *((a, a.replace("_", " ")) for a in ACTION_TYPES)],
        users=[("", "round robin / nobody"), *((str(u["id"]), u["name"]) for u in users)],
        stages=[("", "—"), *((s, s) for s in lifecycle.STAGES)], unless=form.UNLESS_CHOICES,
    )  # fmt: skip


async def new_rule(request: web.Request) -> web.Response:
    """GET /app/automation/new."""
    await _manager(request)
    return await _form_page(request, form.rows(None), "/app/automation")


async def create_rule(request: web.Request) -> web.Response:
    """POST /app/automation: save, then on to the rule's page."""
    caller = await _manager(request)
    body = form.body(await request.post())
    try:
        forms.validate(schema.RULE_BODY, body)
        with forms.readable_errors():
            doc = await store.create(request.app[POOL], body, caller)
    except BadRequest as exc:
        return await _form_page(request, form.rows(body), "/app/automation", str(exc), 422)
    raise web.HTTPSeeOther(f"/app/automation/{doc['id']}?" + urlencode({"notice": "Rule saved"}))


async def edit_rule(request: web.Request) -> web.Response:
    """GET /app/automation/{id}/edit."""
    await _manager(request)
    rule_id = _rule_id(request)
    doc = await store.get(request.app[POOL], rule_id)
    if doc is None:
        raise web.HTTPNotFound(reason=NO_RULE)
    return await _form_page(request, form.rows(doc), f"/app/automation/{rule_id}")


async def update_rule(request: web.Request) -> web.Response:
    """POST /app/automation/{id}: the whole rule from the form."""
    caller = await _manager(request)
    rule_id = _rule_id(request)
    body = form.body(await request.post())
    try:
        forms.validate(schema.RULE_BODY, body)
        with forms.readable_errors():
            doc = await store.update(request.app[POOL], rule_id, body, caller)
    except BadRequest as exc:
        return await _form_page(request, form.rows(body), f"/app/automation/{rule_id}", str(exc), 422)
    if doc is None:
        raise web.HTTPNotFound(reason=NO_RULE)
    raise web.HTTPSeeOther(f"/app/automation/{rule_id}?" + urlencode({"notice": "Rule saved"}))


async def toggle_rule(request: web.Request) -> web.Response:
    """POST /app/automation/{id}/toggle: switch a rule on or off."""
    caller = await _manager(request)
    rule_id = _rule_id(request)
    on = (await request.post()).get("enabled") == "on"
    if await store.update(request.app[POOL], rule_id, {"enabled": on}, caller) is None:
        raise web.HTTPNotFound(reason=NO_RULE)
    raise web.HTTPSeeOther(
        "/app/automation?" + urlencode({"notice": "Rule switched " + ("on" if on else "off")})
    )


async def rule_page(
    request: web.Request, tested: dict[str, Any] | None = None, message: str | None = None, status: int = 200
) -> web.Response:
    """GET /app/automation/{id}: the rule in words, its run log and the test form."""
    await _manager(request)
    rule_id = _rule_id(request)
    pool = request.app[POOL]
    doc = await store.get(pool, rule_id)
    if doc is None:
        raise web.HTTPNotFound(reason=NO_RULE)
    return render(
        request, "automation/rule.html", status=status, title=doc["name"], message=message,
        notice=request.query.get("notice"), rule=doc, runs=await store.runs(pool, rule_id, None, 100),
        conditions=[describe_condition(c) for c in doc["conditions"]],
        actions=[describe_action(a) for a in doc["actions"]], tested=tested,
    )  # fmt: skip


async def test_rule(request: web.Request) -> web.Response:
    """POST /app/automation/{id}/test: what the rule would do for a person now; changes nothing."""
    await _manager(request)
    raw = str((await request.post()).get("person_id", "")).strip()
    try:
        person = uuid.UUID(raw)
    except ValueError:
        return await rule_page(request, message="person_id: give a person's id", status=422)
    doc = await store.get(request.app[POOL], _rule_id(request))
    if doc is None:
        raise web.HTTPNotFound(reason=NO_RULE)
    async with request.app[POOL].acquire() as conn:
        result = await rules.dry_run(conn, rules.Rule.of(doc), person)
    if not result["found"]:
        return await rule_page(request, message="No person has this id.", status=422)
    return await rule_page(request, tested=result | {"person_id": str(person)})


async def notifications(request: web.Request) -> web.Response:
    """GET /app/notifications: the signed-in user's notices, unread first."""
    caller = await signed_in(request)
    rows = await request.app[POOL].fetch(queries.NOTIFICATIONS, caller.user_id, 100) if caller.user_id else []
    return render(request, "automation/notifications.html", title="Notices", rows=rows)


async def read_notifications(request: web.Request) -> web.Response:
    """POST /app/notifications/read: mark them all read."""
    caller = await signed_in(request)
    if caller.user_id:
        await request.app[POOL].execute(queries.READ_NOTIFICATIONS, caller.user_id)
    raise web.HTTPSeeOther("/app/notifications")


async def read_notification(request: web.Request) -> web.Response:
    """POST /app/notifications/{id}/read: mark one of one's own notices read (another user's is not found)."""
    caller = await signed_in(request)
    raw = request.match_info["id"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18 or caller.user_id is None:
        raise web.HTTPNotFound(reason="No notice has this id.")
    await request.app[POOL].execute(queries.READ_NOTIFICATION, int(raw), caller.user_id)
    raise web.HTTPSeeOther("/app/notifications")


async def unread_badge(request: web.Request) -> web.Response:
    """GET /app/notifications/unread: the nav's badge, the signed-in user's unread count (nothing when none);
    base.html loads it with htmx so that rendering a page stays free of queries. A session that ended meanwhile
    gets an empty badge, not the sign-in page swapped into the nav."""
    try:
        caller = await signed_in(request)
    except web.HTTPSeeOther:
        return web.Response(text="", content_type="text/html", headers={"Cache-Control": "no-store"})
    count = await request.app[POOL].fetchval(queries.UNREAD_CAPPED, caller.user_id) if caller.user_id else 0
    return render(request, "automation/_unread.html", count=count)


async def person_runs(request: web.Request) -> web.Response:
    """GET /app/persons/{id}/workflow-runs: the person's runs, as the part of the person page it loads
    (automation/_person_runs.html); every signed-in role, as the API."""
    await signed_in(request)
    try:
        person = uuid.UUID(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound(reason="No such person") from None
    return render(
        request, "automation/_runs.html", runs=await store.runs(request.app[POOL], None, person, 50)
    )


def pages() -> list[web.AbstractRouteDef]:
    """The automation pages under /app."""
    return [
        web.get("/app/automation", rule_list),
        web.get("/app/automation/new", new_rule),
        web.post("/app/automation", create_rule),
        web.get("/app/automation/{id}", rule_page),
        web.post("/app/automation/{id}", update_rule),
        web.get("/app/automation/{id}/edit", edit_rule),
        web.post("/app/automation/{id}/toggle", toggle_rule),
        web.post("/app/automation/{id}/test", test_rule),
        web.get("/app/persons/{id}/workflow-runs", person_runs),
        web.get("/app/notifications", notifications),
        web.get("/app/notifications/unread", unread_badge),
        web.post("/app/notifications/read", read_notifications),
        web.post("/app/notifications/{id}/read", read_notification),
    ]
