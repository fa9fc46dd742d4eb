"""A person's page: everything on one screen. Editable facts and custom fields (inputs made from the field
definitions), next step and owner, stage moves and their history with causes, the score with its reasons, rep
activities, purchases and feedback entered here, and the timeline with each entry's details.

Every change goes through the functions the REST API uses (people/persons.py, http/crud.py with
people/records.py), validated by the same JSON Schemas, so the two cannot disagree.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import asyncpg
from aiohttp import web

from leadline_crm import lifecycle
from leadline_crm.http import crud, forms
from leadline_crm.http.auth import ADMIN, REPS, Caller
from leadline_crm.http.errors import BadRequest, Conflict
from leadline_crm.http.keys import POOL
from leadline_crm.http.pages import may, signed_in
from leadline_crm.http.params import decode_cursor, encode_cursor
from leadline_crm.http.templating import money, render
from leadline_crm.people import conflicts, consent, persons, privacy, queries, records
from leadline_crm.people.routes import PATCH_BODY

PAGE = 50
ACTIVITY_KINDS = [("phone_call", "phone call"), ("site_visit", "site visit"), ("meeting", "meeting"),
                  ("note", "note"), ("email", "email")]  # fmt: skip
#: The facts a rep edits, in the order the form shows them.
EDITABLE = (("first_name", "First name"), ("last_name", "Last name"), ("title", "Title"), ("company", "Company"),
            ("industry", "Industry"), ("company_size", "Company size"), ("country", "Country"), ("city", "City"),
            ("street", "Street"), ("postal_code", "Postal code"))  # fmt: skip
PURCHASES, FEEDBACK = records.RESOURCES[0], records.RESOURCES[1]


def display_name(row: Mapping[str, Any]) -> str:
    name = " ".join(filter(None, (row.get("first_name"), row.get("last_name"))))
    return name or (row["emails"][0] if row.get("emails") else "(anonymous)")


def person_id(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound(reason="No such person") from None


def _details(kind: str, data: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """What the timeline shows of one entry: a title, its details as (label, value) pairs, and a bot mark."""
    if kind == "stage":
        cause = data.get("cause_user") or (
            f"event {data['cause_event_id']}" if data.get("cause_event_id") else ""
        )
        return {"what": f"stage {data.get('from')} → {data.get('to')}",
                "pairs": [("why", data.get("reason")), ("by", names.get(cause, cause))]}  # fmt: skip
    if kind == "activity":
        return {"what": str(data.get("kind", "")).replace("_", " "),
                "pairs": [("outcome", data.get("outcome")), ("notes", data.get("notes")),
                          ("rep", names.get(str(data.get("rep_id")), ""))]}  # fmt: skip
    if kind == "purchase":
        product = names.get(str(data.get("product_id")), "a product")
        return {"what": f"purchase: {product}, quantity {data.get('quantity')}",
                "pairs": [("price paid", money(data.get("price_paid"), names.get(f"currency:{data.get('product_id')}"))),
                          ("on", data.get("purchased_on")),
                          ("rep", names.get(str(data.get("sales_rep")), ""))]}  # fmt: skip
    if kind == "case":  # service/cases.py's case_events
        move = (
            f"{data.get('from')} → {data.get('to')}" if data.get("event") == "status" else data.get("event")
        )
        return {"what": f"case {data.get('tracking_number')} ({data.get('type')}): {move}",
                "pairs": [("subject", data.get("subject")), ("by", data.get("actor"))]}  # fmt: skip
    if kind == "deal":  # sales/deals.py's deal_stage_history
        move = (
            f"{data.get('from')} → {data.get('to')}" if data.get("from") else f"created in {data.get('to')}"
        )
        return {"what": f"deal {data.get('deal')}: {move}",
                "pairs": [("amount", f"{data.get('amount')} {data.get('currency')}"), ("why", data.get("reason")),
                          ("by", names.get(str(data.get("actor")), data.get("actor")))]}  # fmt: skip
    if kind == "feedback":
        return {
            "what": f"feedback: {'★' * int(data.get('rating') or 0)}",
            "pairs": [("text", data.get("text"))],
        }
    pairs: list[tuple[str, Any]] = [("url", data.get("url"))]
    form = data.get("form") or {}
    if form:
        pairs.append(("form", form.get("key")))
        pairs.extend((f"· {k}", v) for k, v in (form.get("fields") or {}).items())
    if link := data.get("link"):
        pairs.append(("link to", link.get("target")))
    if affiliate := data.get("affiliate"):
        pairs.append(("affiliate", f"{affiliate.get('affiliate_id')} / ad {affiliate.get('ad_id')}"))
    bot = data.get("automated") or (data.get("bot") or {}).get("is_bot")
    indicators = ", ".join((data.get("bot") or {}).get("indicators") or [])
    return {"what": str(data.get("type", "event")).replace("_", " "), "pairs": pairs, "bot": bool(bot),
            "bot_why": indicators}  # fmt: skip


async def _names(
    pool: asyncpg.Pool, items: list[asyncpg.Record], history: list[asyncpg.Record]
) -> dict[str, str]:
    """Names of the products and reps the timeline's entries and the stage history point at (two small reads)."""
    products = {str(i["data"].get("product_id")) for i in items if i["kind"] == "purchase"}
    users = {str(i["data"].get(k)) for i in items for k in ("rep_id", "sales_rep") if i["data"].get(k)}
    causes = [str(i["data"].get("cause_user") or "") for i in items if i["kind"] == "stage"]
    causes += [h["cause_user"] or "" for h in history]
    users |= {c.removeprefix("user:") for c in causes if c.startswith("user:")}
    names: dict[str, str] = {}
    for r in await pool.fetch(queries.NAMES_OF_PRODUCTS, list(products)):
        names[r["id"]], names[f"currency:{r['id']}"] = r["name"], r["currency"]
    for r in await pool.fetch(queries.NAMES_OF_USERS, [u for u in users if _is_uuid(u)]):
        names[r["id"]] = names[f"user:{r['id']}"] = r["name"]
    return names


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


async def person_page(
    request: web.Request,
    message: str | None = None,
    status: int = 200,
    typed: Mapping[str, Any] | None = None,
) -> web.Response:
    """GET /app/persons/{id}."""
    caller = await signed_in(request)
    pid = person_id(request)
    pool = request.app[POOL]
    row = await pool.fetchrow(queries.PERSON, pid)
    if row is None:
        survivor = await pool.fetchval(queries.SURVIVOR, pid)
        if survivor is not None:
            raise web.HTTPSeeOther(f"/app/persons/{survivor}")
        raise web.HTTPNotFound(reason="No such person")
    after: tuple[datetime | None, str | None] = (None, None)
    if cursor := request.query.get("cursor"):
        try:
            after = decode_cursor(cursor)
        except BadRequest:
            message = "That page link is broken; showing the newest entries."
    items = await pool.fetch(queries.TIMELINE, pid, after[0], after[1], PAGE + 1)
    history = await pool.fetch(queries.STAGE_HISTORY, pid)
    names = await _names(pool, items[:PAGE], history)
    older = None
    if len(items) > PAGE:
        older = urlencode({"cursor": encode_cursor(items[PAGE - 1]["at"], items[PAGE - 1]["key"])})
    person = dict(row)
    definitions = await pool.fetch(queries.FIELD_DEFINITIONS_FULL)
    values = dict(typed or {})
    return render(
        request, "people/person.html", status=status, title=display_name(person), message=message,
        notice=request.query.get("notice"), pid=pid, person=person, typed=values, editable=EDITABLE,
        definitions=definitions, missing=[d["label"] for d in definitions
                                          if d["required"] and d["name"] not in person["attributes"]],
        can_write=may(caller, persons.WRITERS), is_admin=may(caller, ADMIN), can_sell=may(caller, PURCHASES.write_roles),
        users=await pool.fetch(queries.USERS), products=await pool.fetch(queries.PRODUCTS),
        stage_options=[(s, s) for s in lifecycle.STAGES if s != row["stage"]], activity_kinds=ACTIVITY_KINDS,
        history=[dict(h) | {"cause": names.get(h["cause_user"] or "", h["cause_user"])} for h in history], reasons=await pool.fetch(queries.SCORE_REASONS, pid),
        purchases=await pool.fetch(queries.PURCHASES_OF, pid), feedback=await pool.fetch(queries.FEEDBACK_OF, pid),
        timeline=[{"at": i["at"], "kind": i["kind"], **_details(i["kind"], i["data"], names)} for i in items[:PAGE]],
        older=older, today=datetime.now().date(), conflicts=await conflicts.conflicts_of(pool, pid),
        merges=await conflicts.merges_of(pool, pid), consent=await consent.of(pool, pid),
        consent_purposes=consent.PURPOSES,
    )  # fmt: skip


async def _writer(request: web.Request, roles: frozenset[str]) -> Caller:
    """The signed-in caller, if their role may make this change (else a readable 403 page)."""
    caller = await signed_in(request)
    if not may(caller, roles):
        raise web.HTTPForbidden(reason="Your role may not do this")
    return caller


def _split(text: str) -> list[str]:
    """Several emails or phones typed in one box, one per line or comma-separated."""
    return [v.strip() for v in re.split(r"[,\n;]+", text) if v.strip()]


async def edit_facts(request: web.Request) -> web.Response:
    """POST /app/persons/{id}: the facts form (an emptied box clears its fact)."""
    caller = await _writer(request, persons.WRITERS)
    pid = person_id(request)
    form = await request.post()
    body: dict[str, Any] = {
        k: (str(form.get(k, "")).replace("\x00", "").strip() or None) for k, _ in EDITABLE
    }
    for key in ("next_step", "next_step_on", "owner_id"):
        body[key] = str(form.get(key, "")).strip() or None
    body["emails"] = _split(str(form.get("emails", "")))
    body["phones"] = _split(str(form.get("phones", "")))
    try:
        forms.validate(PATCH_BODY, body)
        with forms.readable_errors():
            await persons.change_person(
                request.app[POOL], pid, body, caller, request.app[persons.PHONE_REGION]
            )
    except (BadRequest, Conflict) as exc:
        return await person_page(request, str(exc), 422, typed=dict(form))
    raise web.HTTPSeeOther(f"/app/persons/{pid}?notice=Saved")


def _typed_value(kind: str, raw: str, present: bool) -> Any:
    """A custom field's form input as its JSON type; an empty box removes the field."""
    if kind == "boolean":
        return True if present and raw else None
    if not raw:
        return None
    if kind == "number":
        try:
            number = float(raw)
        except ValueError:
            raise BadRequest(f"{raw!r} is not a number") from None
        return int(number) if number.is_integer() else number
    return raw


async def edit_fields(request: web.Request) -> web.Response:
    """POST /app/persons/{id}/fields: custom fields, inputs made from the admin's definitions."""
    caller = await _writer(request, persons.WRITERS)
    pid = person_id(request)
    form = await request.post()
    pool = request.app[POOL]
    try:
        attributes = {
            d["name"]: _typed_value(
                d["type"], str(form.get(f"f_{d['name']}", "")).strip(), f"f_{d['name']}" in form
            )
            for d in await pool.fetch(queries.FIELD_DEFINITIONS_FULL)
        }
        await persons.change_person(pool, pid, {"attributes": attributes}, caller)
    except (BadRequest, Conflict) as exc:
        return await person_page(request, str(exc), 422, typed=dict(form))
    raise web.HTTPSeeOther(f"/app/persons/{pid}?notice=Saved")


async def move_stage(request: web.Request) -> web.Response:
    """POST /app/persons/{id}/stage."""
    caller = await _writer(request, persons.WRITERS)
    pid = person_id(request)
    form = await request.post()
    stage, reason = str(form.get("stage", "")), str(form.get("reason", "")).strip()
    if stage not in lifecycle.STAGES:
        return await person_page(request, "Choose a stage from the list.", 422)
    try:
        if await request.app[POOL].fetchval("SELECT 1 FROM persons WHERE person_id = $1", pid) is None:
            raise web.HTTPNotFound(reason="No such person")
        await persons.change_person(request.app[POOL], pid, {"stage": stage, "reason": reason[:1000]}, caller)
    except (BadRequest, Conflict) as exc:
        return await person_page(request, str(exc), 422)
    raise web.HTTPSeeOther(f"/app/persons/{pid}")


async def log_activity(request: web.Request) -> web.Response:
    """POST /app/persons/{id}/activities: a call, visit, meeting or note (calls and visits make a prospect), and
    the next step it leads to."""
    caller = await _writer(request, REPS)
    pid = person_id(request)
    form = await request.post()
    body = {"person_id": str(pid), "kind": str(form.get("kind", ""))} | forms.filled(
        form, ("outcome", "notes")
    )
    step = forms.filled(form, ("next_step", "next_step_on"))
    try:
        forms.validate(records.RESOURCES[2].body_schema(creating=True), body)
        if step:
            forms.validate(PATCH_BODY, step)
        with forms.readable_errors():
            await crud.insert(request.app[POOL], records.RESOURCES[2], body, caller)
            if step:
                await persons.change_person(request.app[POOL], pid, step, caller)
    except (BadRequest, Conflict) as exc:
        return await person_page(request, str(exc), 422, typed=dict(form))
    raise web.HTTPSeeOther(f"/app/persons/{pid}?notice=Activity+logged")


async def add_purchase(request: web.Request) -> web.Response:
    """POST /app/persons/{id}/purchases: product, date, rep, price and special instructions (a customer now)."""
    caller = await _writer(request, PURCHASES.write_roles)
    pid = person_id(request)
    form = await request.post()
    body: dict[str, Any] = {"person_id": str(pid)} | forms.filled(
        form, ("product_id", "purchased_on", "sales_rep", "price_paid", "special_instructions")
    )
    try:
        body["quantity"] = int(str(form.get("quantity", "1")) or 1)
        if "price_paid" in body:
            body["price_paid"] = body["price_paid"].replace(",", "")
        forms.validate(PURCHASES.body_schema(creating=True), body)
        with forms.readable_errors():
            await crud.insert(request.app[POOL], PURCHASES, body, caller)
    except ValueError:
        return await person_page(request, "quantity: a whole number", 422, typed=dict(form))
    except (BadRequest, Conflict) as exc:
        return await person_page(request, str(exc), 422, typed=dict(form))
    raise web.HTTPSeeOther(f"/app/persons/{pid}?notice=Purchase+recorded")


async def add_feedback(request: web.Request) -> web.Response:
    """POST /app/persons/{id}/feedback: a rating from 1 to 5 and what they said."""
    caller = await _writer(request, FEEDBACK.write_roles)
    pid = person_id(request)
    form = await request.post()
    body: dict[str, Any] = {"person_id": str(pid)} | forms.filled(form, ("text",))
    try:
        body["rating"] = int(str(form.get("rating", "")))
        forms.validate(FEEDBACK.body_schema(creating=True), body)
        with forms.readable_errors():
            await crud.insert(request.app[POOL], FEEDBACK, body, caller)
    except ValueError:
        return await person_page(request, "rating: choose 1 to 5 stars", 422, typed=dict(form))
    except (BadRequest, Conflict) as exc:
        return await person_page(request, str(exc), 422, typed=dict(form))
    raise web.HTTPSeeOther(f"/app/persons/{pid}?notice=Feedback+recorded")


async def erase_person(request: web.Request) -> web.Response:
    """POST /app/persons/{id}/erase: an admin erases the person (privacy.erase), the box ticked and the request's
    reference given."""
    caller = await _writer(request, ADMIN)
    pid = person_id(request)
    form = await request.post()
    reference = str(form.get("reference", "")).strip()
    if form.get("confirm") != "yes" or not 1 <= len(reference) <= 200:
        return await person_page(request, "To erase, give the request's reference and tick the box.", 422)
    try:
        await privacy.erase(request.app[POOL], pid, reference, caller, request.app[privacy.TOPICS])
    except privacy.Missing:
        raise web.HTTPNotFound(reason="No such person") from None
    except Conflict as exc:
        return await person_page(request, str(exc), 409)
    raise web.HTTPSeeOther(f"/app/persons/{pid}?" + urlencode({"notice": "Personal data erased"}))


async def set_consent(request: web.Request) -> web.Response:
    """POST /app/persons/{id}/consent: an agent records what the person said (granted, withdrawn, or left)."""
    caller = await _writer(request, persons.WRITERS)
    pid = person_id(request)
    form = await request.post()
    flags = {p: form[p] == "yes" for p in consent.PURPOSES if form.get(p) in ("yes", "no")}
    try:
        await consent.set_by(request.app[POOL], pid, flags, caller)
    except BadRequest:
        return await person_page(request, "Choose granted or withdrawn for at least one purpose.", 422)
    except LookupError:
        raise web.HTTPNotFound(reason="No such person") from None
    raise web.HTTPSeeOther(f"/app/persons/{pid}?notice=Consent+recorded")


def pages() -> list[web.AbstractRouteDef]:
    """The person page and its forms."""
    return [
        web.get("/app/persons/{id}", person_page),
        web.post("/app/persons/{id}", edit_facts),
        web.post("/app/persons/{id}/fields", edit_fields),
        web.post("/app/persons/{id}/stage", move_stage),
        web.post("/app/persons/{id}/activities", log_activity),
        web.post("/app/persons/{id}/purchases", add_purchase),
        web.post("/app/persons/{id}/feedback", add_feedback),
        web.get("/app/persons/{id}/export", privacy.export_page),
        web.post("/app/persons/{id}/erase", erase_person),
        web.post("/app/persons/{id}/consent", set_consent),
    ]
