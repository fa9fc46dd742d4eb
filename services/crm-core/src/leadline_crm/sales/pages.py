"""The sales pages under /app: the sales dashboard, companies and a company's page, the deal board per pipeline
(a column per stage; each card moves with a plain form post, and app.js lets a card be dragged onto a column,
posting the same form with htmx), the deal table with filters and CSV export, and tasks (new, done, snoozed).

Every change goes through the functions the REST API uses (sales/deals.py, http/crud.py with sales/records.py),
validated by the same JSON Schemas.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import asyncpg
from aiohttp import web

from leadline_crm.http import crud, forms
from leadline_crm.http.auth import REPS, Caller
from leadline_crm.http.crud import Resource
from leadline_crm.http.errors import BadRequest, Conflict
from leadline_crm.http.keys import POOL
from leadline_crm.http.listing import csv_response, filtered_page, list_csv, query_csv
from leadline_crm.http.pages import may, signed_in
from leadline_crm.http.templating import render
from leadline_crm.sales import deals, listing, purchases, queries, records, targets
from leadline_crm.sales.companies import set_company
from leadline_crm.sales.volume import volume

BOARD_CARDS = 30  # per column; the column's header counts them all, the table lists them
USERS = "SELECT id, name FROM users WHERE active ORDER BY name"
PRODUCTS = "SELECT id, name, list_price, currency FROM products WHERE active ORDER BY name"
PURCHASES_RESOURCE = web.AppKey("sales.purchases_resource", Resource)
"""The purchases resource (people/records.py), handed in by the app factory: the deal page records a won deal's
purchases by its rules, but sales/ never imports people/ (people/ and stages.py call into sales/, and an import
back would close a circle: stages → sales → people → ingest → stages)."""


def _id(request: web.Request, name: str = "id") -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError:
        raise web.HTTPNotFound(reason="Not found") from None


async def _writer(request: web.Request, roles: frozenset[str]) -> Caller:
    caller = await signed_in(request)
    if not may(caller, roles):
        raise web.HTTPForbidden(reason="Your role may not do this")
    return caller


def _back(request: web.Request, form: Any, default: str) -> str:
    """Where a form sends the rep back to: a page of this app named in ``next``, else ``default``."""
    nxt = str(form.get("next", "")) if form is not None else ""
    return nxt if nxt.startswith("/app/") and not nxt.startswith("//") else default


# --- dashboard ---


async def dashboard(request: web.Request, message: str | None = None, status: int = 200) -> web.Response:
    """GET /app/sales: sales volume per rep and month, weighted pipeline value by stage, my tasks due."""
    caller = await signed_in(request)
    pool = request.app[POOL]
    today = datetime.now(UTC).date()
    since = (today.replace(day=1) - timedelta(days=150)).replace(day=1)
    rows = await volume(pool, since, today + timedelta(days=1), "month")
    months = sorted({r["period"].date().isoformat() for r in rows})
    reps = sorted({r["rep_name"] or "(nobody)" for r in rows})
    by = {(r["rep_name"] or "(nobody)", r["period"].date().isoformat()): r for r in rows}

    def series(field: str) -> list[dict[str, Any]]:
        return [{"label": rep, "values": [float(by[(rep, m)][field]) if (rep, m) in by else 0 for m in months]}
                for rep in reps]  # fmt: skip

    pipelines = await pool.fetch(queries.PIPELINES)
    chosen = _pick(request.query.get("pipeline"), pipelines)
    weighted = await pool.fetch(queries.WEIGHTED, chosen) if chosen else []
    stages = [dict(s) for s in await pool.fetch(queries.STAGES_OF, chosen)] if chosen else []
    open_stages = [s for s in stages if s["kind"] == "open"]
    values = {(w["stage_id"], w["currency"]): w for w in weighted}
    currencies = sorted({w["currency"] for w in weighted}) or ["EUR"]
    weighted_chart = {
        "type": "bar",
        "labels": [s["name"] for s in open_stages],
        "series": [
            {"label": f"{kind} ({cur})", "values": [float(values[(s["id"], cur)][kind]) if (s["id"], cur) in values
                                                    else 0 for s in open_stages]}
            for cur in currencies[:3] for kind in ("amount", "weighted")
        ],
    }  # fmt: skip
    totals = {
        cur: sum((w["weighted"] for w in weighted if w["currency"] == cur), Decimal(0)) for cur in currencies
    }
    return render(
        request, "sales/dashboard.html", status=status, message=message, notice=request.query.get("notice"),
        title="Sales", months=months, rows=rows,
        won_chart={"type": "bar", "labels": months, "series": series("won_value")},
        revenue_chart={"type": "bar", "labels": months, "series": series("revenue")},
        activity_chart={"type": "line", "labels": months, "series": series("activities")},
        weighted_chart=weighted_chart, weighted=weighted, totals=totals, pipelines=pipelines, chosen=chosen,
        tasks=await pool.fetch(queries.TASKS_DUE, caller.user_id if caller.role != "admin" else None,
                               datetime.now(UTC) + timedelta(days=7), 30),
        now=datetime.now(UTC), **await _targets(request),
    )  # fmt: skip


async def _targets(request: web.Request) -> dict[str, Any]:
    """Won versus target for the month asked for (default this one): the table, its chart, the form's reps."""
    pool = request.app[POOL]
    try:
        month = targets.month_of(request.query.get("month"))
    except BadRequest:
        raise web.HTTPUnprocessableEntity(reason="month: a month as YYYY-MM") from None
    rows = await targets.won_vs_target(pool, month)
    labels = [f"{r['rep_name']} ({r['currency']})" for r in rows]
    chart = {"type": "bar", "labels": labels, "zero": True, "series": [
        {"label": "target", "values": [float(r["target"] or 0) for r in rows]},
        {"label": "won", "values": [float(r["won_value"]) for r in rows]}]}  # fmt: skip
    return {"target_month": month.isoformat()[:7], "target_rows": rows, "target_chart": chart,
            "reps": await pool.fetch(USERS)}  # fmt: skip


async def set_target(request: web.Request) -> web.Response:
    """POST /app/sales/targets: an admin sets a rep's target for a month (the API's rules)."""
    caller = await _writer(request, frozenset({"admin"}))
    form = await request.post()
    body: dict[str, Any] = forms.filled(form, ("user_id", "month", "amount", "currency"))
    month = body.get("month", "")
    try:
        if "amount" in body:
            body["amount"] = float(Decimal(body["amount"]))
        forms.validate(targets.BODY, body)
        await targets.set_target(request.app[POOL], body, caller)
    except (BadRequest, ArithmeticError, ValueError) as exc:
        reason = str(exc) if isinstance(exc, BadRequest) else "amount: a number"
        return await dashboard(request, message=f"Target not set: {reason}", status=422)
    raise web.HTTPSeeOther("/app/sales?" + urlencode({"month": month, "notice": "Target set."}))


def _pick(raw: str | None, pipelines: list[asyncpg.Record]) -> uuid.UUID | None:
    """The pipeline asked for, else the default one."""
    ids = [p["id"] for p in pipelines]
    if raw:
        try:
            wanted = uuid.UUID(raw)
        except ValueError:
            raise web.HTTPNotFound(reason="No such pipeline") from None
        if wanted not in ids:
            raise web.HTTPNotFound(reason="No such pipeline")
        return wanted
    return ids[0] if ids else None


# --- the board ---


async def board(request: web.Request, message: str | None = None, status: int = 200) -> web.Response:
    """GET /app/deals/board?pipeline=&owner=: a column per stage, its first cards and its totals."""
    caller = await signed_in(request)
    pool = request.app[POOL]
    pipelines = await pool.fetch(queries.PIPELINES)
    chosen = _pick(request.query.get("pipeline"), pipelines)
    owner_raw = request.query.get("owner", "")
    owner = caller.user_id if owner_raw == "me" else None
    if owner_raw not in ("", "me"):
        try:
            owner = uuid.UUID(owner_raw)
        except ValueError:
            owner_raw = ""
    stages = [dict(s) for s in await pool.fetch(queries.STAGES_OF, chosen)] if chosen else []
    totals: dict[uuid.UUID, dict[str, Any]] = {}
    if not chosen:
        sums = []
    elif owner is None:
        sums = await pool.fetch(queries.BOARD_TOTALS, chosen)
    else:
        sums = await pool.fetch(queries.BOARD_TOTALS_OF, chosen, owner)
    for t in sums:
        entry = totals.setdefault(t["stage_id"], {"deals": 0, "amounts": []})
        entry["deals"] += t["deals"]
        entry["amounts"].append((t["amount"], t["currency"]))
    cards: dict[uuid.UUID, list[asyncpg.Record]] = {s["id"]: [] for s in stages}
    if chosen:
        if owner is None:
            found = await pool.fetch(queries.BOARD_CARDS, chosen, list(cards), BOARD_CARDS)
        else:
            found = await pool.fetch(queries.BOARD_CARDS_OF, chosen, list(cards), BOARD_CARDS, owner)
        for card in found:
            cards[card["stage_id"]].append(card)
    columns = [
        s | {"cards": cards[s["id"]], "total": totals.get(s["id"], {"deals": 0, "amounts": []})}
        for s in stages
    ]
    return render(
        request, "sales/board.html", status=status, title="Deal board", message=message,
        notice=request.query.get("notice"), pipelines=pipelines, chosen=chosen, columns=columns,
        stages=stages, owner=owner_raw, can_write=may(caller, deals.WRITERS), users=await pool.fetch(USERS),
        here=request.path_qs,
    )  # fmt: skip


async def move_deal(request: web.Request) -> web.StreamResponse:
    """POST /app/deals/{id}/move: stage (and a reason, needed to lose); from a card's form or a drag on the board.

    An htmx request (a drag) gets 204 and a refresh of the board; a plain form post goes back to the page it came
    from."""
    caller = await _writer(request, deals.WRITERS)
    deal = _id(request)
    form = await request.post()
    body: dict[str, Any] = forms.filled(form, ("stage_id", "reason"))
    htmx = request.headers.get("HX-Request") == "true"
    try:
        if "stage_id" not in body:
            raise BadRequest("stage_id: choose a stage")
        forms.validate(deals.PATCH_BODY, body)
        await deals.change_deal(request.app[POOL], deal, body, caller)
    except (BadRequest, Conflict) as exc:
        if htmx:
            return web.Response(status=422, text=str(exc))
        if _back(request, form, "") == f"/app/deals/{deal}":
            return await deal_page(request, str(exc), 422)
        return await board(request, str(exc), 422)
    if htmx:
        return web.Response(status=204, headers={"HX-Refresh": "true"})
    raise web.HTTPSeeOther(_back(request, form, "/app/deals/board"))


async def create_deal(request: web.Request) -> web.Response:
    """POST /app/deals: a new deal from the board's or a company's form."""
    caller = await _writer(request, deals.WRITERS)
    form = await request.post()
    body: dict[str, Any] = forms.filled(
        form, ("title", "person_id", "company_id", "amount", "currency", "pipeline_id", "stage_id",
               "expected_close_on", "owner_id")
    )  # fmt: skip
    try:
        if "amount" in body:
            try:
                body["amount"] = float(body["amount"].replace(",", ""))
            except ValueError:
                raise BadRequest("amount: a number") from None
        forms.validate(deals.CREATE_BODY, body)
        with forms.readable_errors():
            row = await deals.create_deal(request.app[POOL], body, caller)
    except (BadRequest, Conflict) as exc:
        return await board(request, str(exc), 422)
    raise web.HTTPSeeOther(_back(request, form, f"/app/deals/board?pipeline={row['pipeline_id']}"))


async def deal_page(
    request: web.Request, message: str | None = None, status: int = 200, typed: dict[str, Any] | None = None
) -> web.Response:
    """GET /app/deals/{id}: the deal's facts, its stage history and its tasks."""
    caller = await signed_in(request)
    deal = _id(request)
    pool = request.app[POOL]
    row = await pool.fetchrow(queries.DEAL_PAGE, deal)
    if row is None:
        raise web.HTTPNotFound(reason="No such deal")
    return render(
        request, "sales/deal.html", status=status, title=row["title"], message=message,
        notice=request.query.get("notice"), deal=row, history=await pool.fetch(queries.HISTORY_NAMED, deal),
        stages=await pool.fetch(queries.STAGES_OF, row["pipeline_id"]),
        tasks=await pool.fetch(queries.TASKS_OF.format(column="t.deal_id"), deal), users=await pool.fetch(USERS),
        can_write=may(caller, deals.WRITERS), can_task=may(caller, REPS), now=datetime.now(UTC),
        here=f"/app/deals/{deal}", purchases=await purchases.of_deal(pool, deal),
        products=await pool.fetch(PRODUCTS) if row["status"] == "won" else [], typed=typed or {},
    )  # fmt: skip


async def add_purchase(request: web.Request) -> web.Response:
    """POST /app/deals/{id}/purchases: a won deal records a purchase (the purchases API's rules: its person, the
    deal's owner as rep, the list price times quantity unless a price is given)."""
    purchases_resource = request.app[PURCHASES_RESOURCE]
    caller = await _writer(request, purchases_resource.write_roles)
    deal = _id(request)
    form = await request.post()
    person = await request.app[POOL].fetchval("SELECT person_id FROM deals WHERE id = $1", deal)
    body: dict[str, Any] = {"deal_id": str(deal), "person_id": str(person)} | forms.filled(
        form, ("product_id", "purchased_on", "price_paid")
    )
    try:
        body["quantity"] = int(str(form.get("quantity", "1")) or 1)
        if "price_paid" in body:
            body["price_paid"] = float(Decimal(body["price_paid"].replace(",", "")))
        forms.validate(purchases_resource.body_schema(creating=True), body)
        with forms.readable_errors():
            await crud.insert(request.app[POOL], purchases_resource, body, caller)
    except (ValueError, ArithmeticError):
        return await deal_page(request, "quantity and price: numbers", 422, typed=dict(form))
    except (BadRequest, Conflict) as exc:
        return await deal_page(request, str(exc), 422, typed=dict(form))
    raise web.HTTPSeeOther(f"/app/deals/{deal}?notice=Purchase+recorded")


async def edit_deal(request: web.Request) -> web.Response:
    """POST /app/deals/{id}: title, amount, currency, expected close, owner (an emptied box clears it)."""
    caller = await _writer(request, deals.WRITERS)
    deal = _id(request)
    form = await request.post()
    body: dict[str, Any] = forms.filled(form, ("title", "currency"))
    for key in ("expected_close_on", "owner_id"):
        body[key] = str(form.get(key, "")).strip() or None
    try:
        raw = str(form.get("amount", "")).replace(",", "").strip()
        if raw:
            try:
                body["amount"] = float(raw)
            except ValueError:
                raise BadRequest("amount: a number") from None
        forms.validate(deals.PATCH_BODY, body)
        with forms.readable_errors():
            await deals.change_deal(request.app[POOL], deal, body, caller)
    except (BadRequest, Conflict) as exc:
        return await deal_page(request, str(exc), 422)
    raise web.HTTPSeeOther(f"/app/deals/{deal}?notice=Saved")


# --- the deal table ---


async def deal_list(request: web.Request) -> web.Response:
    """GET /app/deals: the table, filtered, sorted and paged."""
    caller = await signed_in(request)
    pool = request.app[POOL]
    query, rows, more, message = await filtered_page(
        request.query,
        listing.DealQuery.parse,
        listing.DealQuery,
        lambda q: listing.page_of(pool, q, caller.user_id),
    )
    users = await pool.fetch(USERS)
    stages = await pool.fetch(queries.STAGES)
    pipelines = {p["id"]: p["name"] for p in await pool.fetch(queries.PIPELINES)}
    return render(
        request, "sales/deals.html", status=422 if message else 200, title="Deals", message=message, query=query,
        rows=rows, more=more,
        owner_options=[("", "anyone"), ("me", "me"), ("none", "nobody"), *((str(u["id"]), u["name"]) for u in users)],
        status_options=[("", "any"), *((s, s) for s in listing.STATUSES)],
        pipeline_options=[("", "any"), *((str(k), v) for k, v in pipelines.items())],
        stage_options=[("", "any"), *((str(s["id"]), f"{pipelines.get(s['pipeline_id'], '')}: {s['name']}")
                                      for s in stages)],
    )  # fmt: skip


async def deal_csv(request: web.Request) -> web.StreamResponse:
    """GET /app/deals.csv: the current list, every page of it."""
    caller = await signed_in(request)
    return await list_csv(request, "deals.csv", lambda q: listing.export_csv(
        request.app[POOL], listing.DealQuery.parse(q), caller.user_id))  # fmt: skip


# --- companies ---


def _company_search(request: web.Request) -> tuple[str, str | None]:
    """The company list's search text and the ILIKE pattern it makes (None without one)."""
    q = request.query.get("q", "").replace("\x00", "").strip()[:200]
    pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%" if q else None
    return q, pattern


async def company_list(request: web.Request) -> web.Response:
    """GET /app/companies?q=&page=."""
    await signed_in(request)
    pool = request.app[POOL]
    q, pattern = _company_search(request)
    try:
        page = max(1, min(int(request.query.get("page", "1") or 1), 200))
    except ValueError:
        page = 1
    rows = await pool.fetch(queries.COMPANIES_PAGE, pattern, 51, (page - 1) * 50)
    return render(
        request, "sales/companies.html", title="Companies", rows=rows[:50], more=len(rows) > 50, q=q, page=page,
        users=await pool.fetch(USERS), notice=request.query.get("notice"),
    )  # fmt: skip


async def company_csv(request: web.Request) -> web.StreamResponse:
    """GET /app/companies.csv?q=: the list the page shows (the same search), every page of it."""
    await signed_in(request)
    _, pattern = _company_search(request)
    rows = query_csv(request.app[POOL], queries.COMPANIES, [pattern], queries.COMPANY_EXPORT_COLUMNS)
    return await csv_response(request, "companies.csv", rows)


async def company_page(request: web.Request, message: str | None = None, status: int = 200) -> web.Response:
    """GET /app/companies/{id}: facts, people, deals and tasks."""
    caller = await signed_in(request)
    cid = _id(request)
    pool = request.app[POOL]
    company = await pool.fetchrow(queries.COMPANY, cid)
    if company is None:
        raise web.HTTPNotFound(reason="No such company")
    return render(
        request, "sales/company.html", status=status, title=company["name"], message=message,
        notice=request.query.get("notice"), company=company, people=await pool.fetch(queries.COMPANY_PEOPLE, cid),
        deals=await pool.fetch(queries.DEALS_OF_COMPANY, cid),
        tasks=await pool.fetch(queries.TASKS_OF.format(column="t.company_id"), cid),
        pipelines=await pool.fetch(queries.PIPELINES), users=await pool.fetch(USERS),
        can_write=may(caller, REPS), can_sell=may(caller, deals.WRITERS), now=datetime.now(UTC),
    )  # fmt: skip


COMPANY_FIELDS = ("name", "domain", "industry", "size", "country", "owner_id")


async def create_company(request: web.Request) -> web.Response:
    """POST /app/companies."""
    caller = await _writer(request, REPS)
    form = await request.post()
    body = forms.filled(form, COMPANY_FIELDS)
    try:
        forms.validate(records.COMPANIES.body_schema(creating=True), body)
        with forms.readable_errors():
            row = await crud.insert(request.app[POOL], records.COMPANIES, body, caller)
    except (BadRequest, Conflict) as exc:
        raise web.HTTPSeeOther("/app/companies?" + _notice(f"Not created: {exc}")) from None
    raise web.HTTPSeeOther(f"/app/companies/{row['id']}?notice=Company+created")


def _notice(text: str) -> str:
    return urlencode({"notice": text[:300]})


async def edit_company(request: web.Request) -> web.Response:
    """POST /app/companies/{id}: the facts form (an emptied box clears its fact)."""
    caller = await _writer(request, REPS)
    cid = _id(request)
    form = await request.post()
    body: dict[str, Any] = {
        k: (str(form.get(k, "")).replace("\x00", "").strip() or None) for k in COMPANY_FIELDS
    }
    if body["domain"]:
        body["domain"] = body["domain"].lower()
    try:
        if not body["name"]:
            raise BadRequest("name: a company needs a name")
        forms.validate(records.COMPANIES.body_schema(creating=False), body)
        with forms.readable_errors():
            if await crud.update(request.app[POOL], records.COMPANIES, cid, body, caller) is None:
                raise web.HTTPNotFound(reason="No such company")
    except (BadRequest, Conflict) as exc:
        return await company_page(request, str(exc), 422)
    raise web.HTTPSeeOther(f"/app/companies/{cid}?notice=Saved")


async def link_person(request: web.Request) -> web.Response:
    """POST /app/companies/{id}/people: link a person by id (or a pasted /app/persons/… address)."""
    caller = await _writer(request, REPS)
    cid = _id(request)
    form = await request.post()
    raw = str(form.get("person", "")).strip().rstrip("/").rpartition("/")[2]
    try:
        person = uuid.UUID(raw)
    except ValueError:
        return await company_page(request, "person: paste the person's id or page address", 422)
    try:
        await set_company(request.app[POOL], person, cid, caller)
    except web.HTTPNotFound:
        return await company_page(request, "person: no such person", 422)
    raise web.HTTPSeeOther(f"/app/companies/{cid}?notice=Linked")


async def unlink_person(request: web.Request) -> web.Response:
    """POST /app/companies/{id}/people/{person_id}/unlink."""
    caller = await _writer(request, REPS)
    cid, person = _id(request), _id(request, "person_id")
    await set_company(request.app[POOL], person, None, caller)
    raise web.HTTPSeeOther(f"/app/companies/{cid}?notice=Unlinked")


# --- tasks ---


async def create_task(request: web.Request) -> web.Response:
    """POST /app/tasks: title, due day and time, owner, about a person, company or deal."""
    caller = await _writer(request, REPS)
    form = await request.post()
    body: dict[str, Any] = forms.filled(
        form, ("title", "owner_id", "person_id", "company_id", "deal_id", "notes")
    )
    due = forms.filled(form, ("due_on", "due_time"))
    back = _back(request, form, "/app/sales")
    try:
        if "due_on" not in due:
            raise BadRequest("due: give a day")
        body["due_at"] = f"{due['due_on']}T{due.get('due_time', '09:00')}:00+00:00"
        forms.validate(records.TASKS.body_schema(creating=True), body)
        with forms.readable_errors():
            await crud.insert(request.app[POOL], records.TASKS, body, caller)
    except (BadRequest, Conflict) as exc:
        raise web.HTTPSeeOther(_with(back, f"Task not added: {exc}")) from None
    raise web.HTTPSeeOther(_with(back, "Task added"))


def _with(url: str, notice: str) -> str:
    return url + ("&" if "?" in url else "?") + _notice(notice)


async def finish_task(request: web.Request) -> web.Response:
    """POST /app/tasks/{id}/done."""
    return await _task_change(request, {"done_at": datetime.now(UTC).isoformat()}, "Task done")


async def snooze_task(request: web.Request) -> web.Response:
    """POST /app/tasks/{id}/snooze: for ``days`` (1 by default)."""
    form = await request.post()
    try:
        days = max(1, min(int(str(form.get("days", "1")) or 1), 90))
    except ValueError:
        days = 1
    until = datetime.now(UTC) + timedelta(days=days)
    return await _task_change(request, {"snoozed_until": until.isoformat()}, f"Snoozed for {days} day(s)")


async def _task_change(request: web.Request, body: dict[str, Any], notice: str) -> web.Response:
    caller = await _writer(request, REPS)
    form = await request.post()
    row = await crud.update(request.app[POOL], records.TASKS, _id(request), body, caller)
    if row is None:
        raise web.HTTPNotFound(reason="No such task")
    raise web.HTTPSeeOther(_with(_back(request, form, "/app"), notice))


# --- teams and assignment rules (admins) ---

RULES_PAGE = "/app/sales/rules"


async def rules_page(request: web.Request) -> web.Response:
    """GET /app/sales/rules: teams with their members and turn, and the assignment rules in order."""
    caller = await signed_in(request)
    pool = request.app[POOL]
    return render(
        request, "sales/rules.html", title="Lead assignment", notice=request.query.get("notice"),
        teams=await pool.fetch(queries.TEAMS_PAGE), rules=await pool.fetch(queries.RULES_PAGE),
        users=await pool.fetch(USERS), can_edit=may(caller, records.ASSIGNMENT_RULES.write_roles),
    )  # fmt: skip


async def _rules_change(request: web.Request, change: Any) -> web.Response:
    """Run one CRUD change from a rules-page form; its refusal comes back as the page's notice."""
    caller = await _writer(request, records.ASSIGNMENT_RULES.write_roles)
    form = await request.post()
    try:
        with forms.readable_errors():
            notice = await change(request.app[POOL], form, caller)
    except (BadRequest, Conflict) as exc:
        notice = f"Not saved: {exc}"
    raise web.HTTPSeeOther(_with(RULES_PAGE, notice))


async def add_team(request: web.Request) -> web.Response:
    """POST /app/sales/teams."""

    async def change(pool: asyncpg.Pool, form: Any, caller: Caller) -> str:
        body = forms.validate(records.TEAMS.body_schema(creating=True), forms.filled(form, ("name",)))
        await crud.insert(pool, records.TEAMS, body, caller)
        return "Team added"

    return await _rules_change(request, change)


async def add_member(request: web.Request) -> web.Response:
    """POST /app/sales/teams/{id}/members."""
    team = _id(request)

    async def change(pool: asyncpg.Pool, form: Any, caller: Caller) -> str:
        body = {"team_id": str(team)} | forms.filled(form, ("user_id",))
        await crud.insert(
            pool,
            records.TEAM_MEMBERS,
            forms.validate(records.TEAM_MEMBERS.body_schema(creating=True), body),
            caller,
        )
        return "Member added"

    return await _rules_change(request, change)


async def remove_member(request: web.Request) -> web.Response:
    """POST /app/sales/members/{id}/delete."""
    member = _id(request)

    async def change(pool: asyncpg.Pool, form: Any, caller: Caller) -> str:
        await crud.delete(pool, records.TEAM_MEMBERS, member, caller)
        return "Member removed"

    return await _rules_change(request, change)


async def add_rule(request: web.Request) -> web.Response:
    """POST /app/sales/rules: a rule giving matching new leads to a team (round robin) or a rep."""

    async def change(pool: asyncpg.Pool, form: Any, caller: Caller) -> str:
        body: dict[str, Any] = forms.filled(form, ("name", "country", "form_key"))
        target = str(form.get("target", ""))
        kind, _, key = target.partition(":")
        if kind not in ("team", "user") or not key:
            raise BadRequest("give the leads to a team or a rep")
        body[f"{kind}_id"] = key
        try:
            body["position"] = int(str(form.get("position", "100")) or 100)
        except ValueError:
            raise BadRequest("position: a whole number") from None
        await crud.insert(pool, records.ASSIGNMENT_RULES, forms.validate(
            records.ASSIGNMENT_RULES.body_schema(creating=True), body), caller)  # fmt: skip
        return "Rule added"

    return await _rules_change(request, change)


async def toggle_rule(request: web.Request) -> web.Response:
    """POST /app/sales/rules/{id}/active: switch a rule on or off."""
    rule = _id(request)

    async def change(pool: asyncpg.Pool, form: Any, caller: Caller) -> str:
        active = form.get("active") == "true"
        if await crud.update(pool, records.ASSIGNMENT_RULES, rule, {"active": active}, caller) is None:
            raise web.HTTPNotFound(reason="No such rule")
        return "Rule on" if active else "Rule off"

    return await _rules_change(request, change)


def pages() -> list[web.AbstractRouteDef]:
    """The sales pages."""
    return [
        web.get("/app/sales", dashboard),
        web.post("/app/sales/targets", set_target),
        web.get("/app/deals", deal_list),
        web.get("/app/deals.csv", deal_csv),
        web.get("/app/deals/board", board),
        web.post("/app/deals", create_deal),
        web.get("/app/deals/{id}", deal_page),
        web.post("/app/deals/{id}", edit_deal),
        web.post("/app/deals/{id}/move", move_deal),
        web.post("/app/deals/{id}/purchases", add_purchase),
        web.get("/app/companies", company_list),
        web.get("/app/companies.csv", company_csv),
        web.post("/app/companies", create_company),
        web.get("/app/companies/{id}", company_page),
        web.post("/app/companies/{id}", edit_company),
        web.post("/app/companies/{id}/people", link_person),
        web.post("/app/companies/{id}/people/{person_id}/unlink", unlink_person),
        web.get(RULES_PAGE, rules_page),
        web.post(RULES_PAGE, add_rule),
        web.post("/app/sales/rules/{id}/active", toggle_rule),
        web.post("/app/sales/teams", add_team),
        web.post("/app/sales/teams/{id}/members", add_member),
        web.post("/app/sales/members/{id}/delete", remove_member),
        web.post("/app/tasks", create_task),
        web.post("/app/tasks/{id}/done", finish_task),
        web.post("/app/tasks/{id}/snooze", snooze_task),
    ]
