"""The service desk's pages: the case queue (/app/cases), a case (customer, purchases, contracts, comments, status
moves, suggested articles), the new-case form, the knowledge base's search and editor (/app/kb), the contracts
list with renewals due (/app/contracts), and public articles at /kb/{id} for anyone, signed in or not.

Every change goes through the functions the API uses (service/cases.py, http/crud.py), checked against the API's
JSON Schemas, with the API's roles; a role that may not gets a readable 403 page, bad input the form again with a
422 and the message.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from leadline_crm.http import crud, forms, templating
from leadline_crm.http.auth import Caller
from leadline_crm.http.errors import BadRequest, Conflict
from leadline_crm.http.keys import POOL
from leadline_crm.http.pages import may, signed_in
from leadline_crm.http.params import decode_cursor, encode_cursor
from leadline_crm.http.templating import render
from leadline_crm.service import cases, kb, queries, report, routes

PAGE = 50
NO_CASE = "No case has this tracking number."


async def _writer(request: web.Request, roles: frozenset[str]) -> Caller:
    caller = await signed_in(request)
    if not may(caller, roles):
        raise web.HTTPForbidden(reason="Your role may not do this")
    return caller


def _options(values: tuple[str, ...], anything: str = "any") -> list[tuple[str, str]]:
    return [("", anything), *((v, v) for v in values)]


#: The queue's age filter: (days, label).
AGES = [("", "any age"), ("1", "older than a day"), ("3", "older than 3 days"), ("7", "older than a week"),
        ("30", "older than 30 days")]  # fmt: skip


async def queue(request: web.Request) -> web.Response:
    """GET /app/cases: the queue, newest first, filtered by status, type, assignee, overdue and age."""
    caller = await signed_in(request)
    pool = request.app[POOL]
    message, rows, older = None, [], None
    query = {k: request.query.get(k, "") for k in ("status", "type", "assignee", "overdue", "older_than")}
    if query["assignee"] == "me":
        query["assignee"] = str(caller.user_id) if caller.user_id else "none"
    try:
        where = routes.queue_filter(query)
        after = decode_cursor(request.query["cursor"]) if request.query.get("cursor") else None
        rows = list(await cases.find_cases(pool, where, after, PAGE + 1))
    except BadRequest as exc:
        message = str(exc)
    if len(rows) > PAGE:
        last = rows[PAGE - 1]
        older = urlencode({**{k: v for k, v in query.items() if v},
                           "cursor": encode_cursor(last["created_at"], str(last["id"]))})  # fmt: skip
    agents = await pool.fetch(queries.AGENTS)
    return render(
        request, "service/queue.html", status=422 if message else 200, title="Cases", message=message,
        query=query, rows=rows[:PAGE], older=older, status_options=_options(cases.STATUSES),
        type_options=_options(cases.TYPES), age_options=AGES,
        assignee_options=[("", "anyone"), ("none", "nobody"), *((str(a["id"]), a["name"]) for a in agents)],
        can_open=may(caller, routes.CASE_WRITERS),
    )  # fmt: skip


async def new_case_form(
    request: web.Request,
    message: str | None = None,
    status: int = 200,
    typed: Mapping[str, Any] | None = None,
) -> web.Response:
    """GET /app/cases/new?person_id=…: the form (from a person's page, the person is filled in)."""
    await _writer(request, routes.CASE_WRITERS)
    values = dict(typed or {})
    values.setdefault("person_id", request.query.get("person_id", ""))
    person, purchases, contracts = None, [], []
    try:
        pid = uuid.UUID(str(values["person_id"])) if values["person_id"] else None
    except ValueError:
        pid = None
    pool = request.app[POOL]
    if pid is not None:
        person = await pool.fetchrow(queries.CUSTOMER, pid)
        purchases = await pool.fetch(queries.PURCHASES_OF, pid)
        contracts = await pool.fetch(queries.CONTRACTS_OF, pid)
    return render(
        request, "service/new_case.html", status=status, title="New case", message=message, typed=values,
        person=person, purchases=purchases, contracts=contracts, types=[(t, t) for t in cases.TYPES],
        priorities=[(p, p) for p in cases.PRIORITIES],
    )  # fmt: skip


async def create_case(request: web.Request) -> web.Response:
    """POST /app/cases: open the case, then on to its page."""
    caller = await _writer(request, routes.CASE_WRITERS)
    form = await request.post()
    body: dict[str, Any] = forms.filled(
        form, ("person_id", "type", "priority", "subject", "description", "purchase_id", "contract_id")
    )
    try:
        forms.validate(routes.CASE_BODY, body)
        with forms.readable_errors():
            row = await cases.create_case(request.app[POOL], body, caller)
    except (BadRequest, Conflict) as exc:
        return await new_case_form(request, str(exc), 422, typed=dict(form))
    raise web.HTTPSeeOther(f"/app/cases/{row['tracking_number']}?" + urlencode({"notice": "Case opened"}))


async def case_page(request: web.Request, message: str | None = None, status: int = 200) -> web.Response:
    """GET /app/cases/{number}."""
    caller = await signed_in(request)
    pool = request.app[POOL]
    try:
        case = await cases.get_case(pool, request.match_info["number"])
    except cases.UnknownCase:
        raise web.HTTPNotFound(reason=NO_CASE) from None
    pid = case["person_id"]
    product = await pool.fetchrow(queries.PRODUCT, case["product_id"]) if case["product_id"] else None
    return render(
        request, "service/case.html", status=status, title=f"{case['tracking_number']}: {case['subject']}",
        message=message, notice=request.query.get("notice"), case=case,
        customer=await pool.fetchrow(queries.CUSTOMER, pid), purchases=await pool.fetch(queries.PURCHASES_OF, pid),
        contracts=await pool.fetch(queries.CONTRACTS_OF, pid), comments=await cases.comments(pool, case["id"]),
        events=await pool.fetch(queries.EVENTS_OF, case["id"]),
        suggested=await kb.suggest(pool, f"{case['subject']} {case['description']}"),
        product=product, product_info=kb.render(product["info"]) if product else None,
        product_articles=await pool.fetch(queries.PRODUCT_ARTICLES, product["id"]) if product else [],
        moves=cases.MOVES[case["status"]], can_write=may(caller, routes.CASE_WRITERS),
        agents=await pool.fetch(queries.AGENTS), priorities=[(p, p) for p in cases.PRIORITIES],
    )  # fmt: skip


async def move_case(request: web.Request) -> web.Response:
    """POST /app/cases/{number}/status."""
    caller = await _writer(request, routes.CASE_WRITERS)
    number = request.match_info["number"]
    to = str((await request.post()).get("status", ""))
    try:
        if to not in cases.STATUSES:
            raise BadRequest("Choose a status from the list.")
        await cases.move(request.app[POOL], number, to, caller)
    except cases.UnknownCase:
        raise web.HTTPNotFound(reason=NO_CASE) from None
    except Conflict as exc:
        return await case_page(request, str(exc), 409)
    except BadRequest as exc:
        return await case_page(request, str(exc), 422)
    raise web.HTTPSeeOther(f"/app/cases/{number}?" + urlencode({"notice": f"Moved to {to}"}))


async def change_case(request: web.Request) -> web.Response:
    """POST /app/cases/{number}: assignee and priority."""
    caller = await _writer(request, routes.CASE_WRITERS)
    number = request.match_info["number"]
    form = await request.post()
    body: dict[str, Any] = {"assignee_id": str(form.get("assignee_id", "")).strip() or None}
    if form.get("priority"):
        body["priority"] = str(form["priority"])
    try:
        forms.validate(routes.CHANGE_BODY, body)
        await cases.change(request.app[POOL], number, body, caller)
    except cases.UnknownCase:
        raise web.HTTPNotFound(reason=NO_CASE) from None
    except (BadRequest, Conflict) as exc:
        return await case_page(request, str(exc), 422)
    raise web.HTTPSeeOther(f"/app/cases/{number}?notice=Saved")


async def comment(request: web.Request) -> web.Response:
    """POST /app/cases/{number}/comments."""
    caller = await _writer(request, routes.CASE_WRITERS)
    number = request.match_info["number"]
    form = await request.post()
    text = str(form.get("body", "")).replace("\x00", "").strip()
    try:
        forms.validate(routes.COMMENT_BODY, {"body": text})
        await cases.comment(request.app[POOL], number, text, form.get("public") == "1", caller)
    except cases.UnknownCase:
        raise web.HTTPNotFound(reason=NO_CASE) from None
    except BadRequest as exc:
        return await case_page(request, str(exc), 422)
    raise web.HTTPSeeOther(f"/app/cases/{number}?notice=Comment+added#comments")


# --- the knowledge base ---


async def kb_index(request: web.Request) -> web.Response:
    """GET /app/kb?q=: search, or the newest articles."""
    caller = await signed_in(request)
    pool = request.app[POOL]
    q = kb.clean_query(request.query.get("q", ""))
    hits = await kb.search(pool, q, 50) if q else []
    recent = [] if q else await pool.fetch(queries.KB_RECENT, 50)
    return render(request, "service/kb.html", title="Knowledge base", q=q, hits=hits, recent=recent,
                  notice=request.query.get("notice"), can_edit=may(caller, routes.SERVICE))  # fmt: skip


def _article_body(form: Mapping[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": str(form.get("title", "")).replace("\x00", "").strip(),
        "body": str(form.get("body", "")).replace("\x00", ""),
        "tags": [t.strip() for t in str(form.get("tags", "")).split(",") if t.strip()],
        "public": form.get("public") == "1",
        "product_id": str(form.get("product_id", "")).strip() or None,
    }
    return body


async def kb_editor(
    request: web.Request,
    message: str | None = None,
    status: int = 200,
    typed: Mapping[str, Any] | None = None,
) -> web.Response:
    """GET /app/kb/new and /app/kb/{id}/edit."""
    await _writer(request, routes.SERVICE)
    pool = request.app[POOL]
    article = None
    if "id" in request.match_info:
        article = await pool.fetchrow(queries.KB_ARTICLE, _article_id(request))
        if article is None:
            raise web.HTTPNotFound(reason="No such article")
    values = dict(typed) if typed is not None else (
        {**dict(article), "tags": ", ".join(article["tags"])} if article else {"public": False}
    )  # fmt: skip
    return render(request, "service/kb_edit.html", status=status, message=message, article=article,
                  title=f"Edit: {article['title']}" if article else "New article", typed=values,
                  products=await pool.fetch(queries.PRODUCTS))  # fmt: skip


def _article_id(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound(reason="No such article") from None


async def kb_save(request: web.Request) -> web.Response:
    """POST /app/kb (new) and /app/kb/{id} (edit)."""
    caller = await _writer(request, routes.SERVICE)
    form = await request.post()
    body = _article_body(form)
    typed = dict(form) | {"public": body["public"]}
    pool = request.app[POOL]
    try:
        with forms.readable_errors():
            if "id" in request.match_info:
                forms.validate(routes.ARTICLES.body_schema(creating=False), body)
                row = await crud.update(pool, routes.ARTICLES, _article_id(request), body, caller)
                if row is None:
                    raise web.HTTPNotFound(reason="No such article")
            else:
                forms.validate(routes.ARTICLES.body_schema(creating=True), body)
                row = await crud.insert(pool, routes.ARTICLES, body, caller)
    except Conflict:
        return await kb_editor(request, "An article with this title exists already.", 409, typed)
    except BadRequest as exc:
        return await kb_editor(request, str(exc), 422, typed)
    raise web.HTTPSeeOther(f"/app/kb/{row['id']}?notice=Saved")


async def kb_article(request: web.Request) -> web.Response:
    """GET /app/kb/{id}: an article as agents read it (public or not)."""
    caller = await signed_in(request)
    article = await request.app[POOL].fetchrow(queries.KB_ARTICLE, _article_id(request))
    if article is None:
        raise web.HTTPNotFound(reason="No such article")
    return render(request, "service/article.html", title=article["title"], article=article,
                  html=kb.render(article["body"]), notice=request.query.get("notice"),
                  can_edit=may(caller, routes.SERVICE), public_page=False)  # fmt: skip


async def public_article(request: web.Request) -> web.Response:
    """GET /kb/{id}: a public article, for anyone; an internal or unknown one is the same 404 page."""
    headers = {"Content-Security-Policy": templating.CONTENT_SECURITY_POLICY, "X-Content-Type-Options": "nosniff",
               "Cache-Control": "no-store"}  # fmt: skip
    try:
        article_id = uuid.UUID(request.match_info["id"])
    except ValueError:
        article_id = None
    article = await request.app[POOL].fetchrow(queries.KB_ARTICLE, article_id) if article_id else None
    if article is None or not article["public"]:
        return render(request, "error.html", status=404, headers=headers, title="Article not found",
                      detail="There is no public article at this address.")  # fmt: skip
    return render(request, "service/article.html", headers=headers, title=article["title"], article=article,
                  html=kb.render(article["body"]), can_edit=False, public_page=True)  # fmt: skip


# --- contracts ---


async def contracts(request: web.Request, message: str | None = None, status: int = 200,
                    typed: Mapping[str, Any] | None = None) -> web.Response:  # fmt: skip
    """GET /app/contracts: every contract by end date, renewals due within 30 days first."""
    caller = await signed_in(request)
    pool = request.app[POOL]
    state = request.query.get("status") or None
    if state not in (None, "active", "suspended", "cancelled", "expired"):
        state, message, status = None, "status: choose one from the list", 422
    return render(
        request, "service/contracts.html", status=status, title="Service contracts", message=message,
        notice=request.query.get("notice"), renewals=await pool.fetch(queries.RENEWALS, 30, 200),
        rows=await pool.fetch(queries.CONTRACT_LIST, state, 500), state=state or "", typed=dict(typed or {}),
        can_write=may(caller, routes.SERVICE), products=await pool.fetch(queries.PRODUCTS),
    )  # fmt: skip


async def add_contract(request: web.Request) -> web.Response:
    """POST /app/contracts."""
    caller = await _writer(request, routes.SERVICE)
    form = await request.post()
    body: dict[str, Any] = forms.filled(form, ("person_id", "name", "product_id", "starts_on", "ends_on"))
    try:
        if form.get("response_hours"):
            body["response_hours"] = int(str(form["response_hours"]))
        forms.validate(routes.CONTRACTS.body_schema(creating=True), body)
        with forms.readable_errors():
            await crud.insert(request.app[POOL], routes.CONTRACTS, body, caller)
    except ValueError:
        return await contracts(request, "response_hours: a whole number of hours", 422, dict(form))
    except (BadRequest, Conflict) as exc:
        return await contracts(request, str(exc), 422, dict(form))
    raise web.HTTPSeeOther("/app/contracts?notice=Contract+added")


# --- the service report ---


async def report_page(request: web.Request) -> web.Response:
    """GET /app/service/report: cases and breaches by type as bars, the report's table and its CSV."""
    await signed_in(request)
    message, status, rows = None, 200, []
    try:
        span = report.Range.parse(dict(request.query))
    except BadRequest as exc:
        message, status, span = str(exc), 422, report.Range.parse({})
    async with request.app[POOL].acquire() as conn:
        rows = await report.rows(conn, span)
    totals = report.by_type(rows)
    chart = {
        "type": "bar", "zero": True, "labels": list(totals),
        "series": [{"label": name, "values": [t[name] for t in totals.values()]}
                   for name in ("cases", "open", "breaches")],
    }  # fmt: skip
    csv = "/api/v1/reports/service?" + urlencode({"from": span.start, "to": span.end, "format": "csv"})
    return render(request, "service/report.html", status=status, title="Service report", message=message,
                  span=span, rows=rows, totals=totals, chart=chart, csv=csv)  # fmt: skip


def pages() -> list[web.AbstractRouteDef]:
    """The service desk's pages."""
    return [
        web.get("/app/cases", queue),
        web.get("/app/cases/new", new_case_form),
        web.post("/app/cases", create_case),
        web.get("/app/cases/{number}", case_page),
        web.post("/app/cases/{number}", change_case),
        web.post("/app/cases/{number}/status", move_case),
        web.post("/app/cases/{number}/comments", comment),
        web.get("/app/kb", kb_index),
        web.get("/app/kb/new", kb_editor),
        web.post("/app/kb", kb_save),
        web.get("/app/kb/{id}", kb_article),
        web.get("/app/kb/{id}/edit", kb_editor),
        web.post("/app/kb/{id}", kb_save),
        web.get("/app/contracts", contracts),
        web.get("/app/service/report", report_page),
        web.post("/app/contracts", add_contract),
        web.get("/kb/{id}", public_article),
    ]
