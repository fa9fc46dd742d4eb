"""The admin area of the web app under /app/admin (role admin): users (create, role, deactivate, password-set
links), API tokens (create, shown once; revoke) and the audit log, filterable and paged."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

import orjson
from aiohttp import web

from leadline_crm.admin import accounts, queries
from leadline_crm.http import accounts as passwords_links
from leadline_crm.http import audit
from leadline_crm.http.auth import ADMIN, ROLES, Caller
from leadline_crm.http.errors import BadRequest, Conflict
from leadline_crm.http.keys import POOL
from leadline_crm.http.pages import forbidden, may, signed_in
from leadline_crm.http.params import decode_cursor, encode_cursor
from leadline_crm.http.templating import render

AUDIT_PAGE = 50
ROLE_OPTIONS = [(r, r.replace("_", " ")) for r in ROLES]
DONE = {  # ?done=… after a redirect: fixed sentences, never text from the URL
    "created": "User created. Make a password link so they can sign in.",
    "role": "Role changed.",
    "deactivated": "User deactivated; their sessions have ended.",
    "activated": "User activated.",
    "revoked": "Token revoked.",
}
ADMIN_NAV = [
    {"href": "/app/admin", "label": "Users"},
    {"href": "/app/admin/tokens", "label": "API tokens"},
    {"href": "/app/admin/audit", "label": "Audit log"},
]


async def _admin(request: web.Request) -> Caller | web.Response:
    caller = await signed_in(request)
    return caller if may(caller, ADMIN) else forbidden(request)


def _user_id(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound(reason="No such user") from None


async def _users_page(
    request: web.Request, message: str | None = None, status: int = 200, form: dict[str, str] | None = None
) -> web.Response:
    users = await request.app[POOL].fetch(queries.USERS)
    return render(
        request, "admin/users.html", status=status, title="Users", message=message,
        notice=DONE.get(request.query.get("done", "")), users=users, roles=ROLE_OPTIONS,
        form=form or {"name": "", "email": "", "role": "sales"}, admin_nav=ADMIN_NAV,
    )  # fmt: skip


async def users(request: web.Request) -> web.Response:
    """GET /app/admin: the users, and the form to add one."""
    caller = await _admin(request)
    if isinstance(caller, web.Response):
        return caller
    return await _users_page(request)


async def create_user(request: web.Request) -> web.Response:
    """POST /app/admin/users."""
    caller = await _admin(request)
    if isinstance(caller, web.Response):
        return caller
    post = await request.post()
    form = {k: str(post.get(k, "")) for k in ("name", "email", "role")}
    try:
        async with request.app[POOL].acquire() as conn, conn.transaction():
            await accounts.create_user(conn, caller, form["name"], form["email"], form["role"])
    except BadRequest as exc:
        return await _users_page(request, str(exc), 422, form)
    except Conflict as exc:
        return await _users_page(request, str(exc), 409, form)
    raise web.HTTPSeeOther("/app/admin?done=created")


async def _change(request: web.Request, done: str, **changes: Any) -> web.Response:
    caller = await _admin(request)
    if isinstance(caller, web.Response):
        return caller
    try:
        async with request.app[POOL].acquire() as conn, conn.transaction():
            await accounts.change_user(conn, caller, _user_id(request), **changes)
    except LookupError:
        raise web.HTTPNotFound(reason="No such user") from None
    except BadRequest as exc:
        return await _users_page(request, str(exc), 422)
    except Conflict as exc:
        return await _users_page(request, str(exc), 409)
    raise web.HTTPSeeOther(f"/app/admin?done={done}")


async def change_role(request: web.Request) -> web.Response:
    """POST /app/admin/users/{id}/role."""
    return await _change(request, "role", role=str((await request.post()).get("role", "")))


async def set_active(request: web.Request) -> web.Response:
    """POST /app/admin/users/{id}/active: active=true or false."""
    active = str((await request.post()).get("active", "")) == "true"
    return await _change(request, "activated" if active else "deactivated", active=active)


async def password_link(request: web.Request) -> web.Response:
    """POST /app/admin/users/{id}/password-link: a one-time link, shown to the admin to pass on."""
    caller = await _admin(request)
    if isinstance(caller, web.Response):
        return caller
    user_id = _user_id(request)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        user = await conn.fetchrow(queries.USER, user_id)
        if user is None or not user["active"]:
            raise web.HTTPNotFound(reason="No such active user")
        token = await passwords_links.new_link(conn, user_id, caller)
    url = f"{request.scheme}://{request.host}/app/password/{token}"
    hours = passwords_links.LINK_LIFETIME // timedelta(hours=1)
    return render(
        request,
        "admin/link.html",
        title="Password link",
        user=user,
        url=url,
        hours=hours,
        admin_nav=ADMIN_NAV,
    )


async def _tokens_page(
    request: web.Request, message: str | None = None, status: int = 200, created: dict[str, str] | None = None
) -> web.Response:
    pool = request.app[POOL]
    return render(
        request, "admin/tokens.html", status=status, title="API tokens", message=message,
        notice=DONE.get(request.query.get("done", "")), tokens=await pool.fetch(queries.TOKENS),
        users=await pool.fetch(queries.USERS), roles=ROLE_OPTIONS, created=created, admin_nav=ADMIN_NAV,
    )  # fmt: skip


async def tokens(request: web.Request) -> web.Response:
    """GET /app/admin/tokens."""
    caller = await _admin(request)
    if isinstance(caller, web.Response):
        return caller
    return await _tokens_page(request)


async def create_token(request: web.Request) -> web.Response:
    """POST /app/admin/tokens: the new token is on this answer only (it is stored as a hash)."""
    caller = await _admin(request)
    if isinstance(caller, web.Response):
        return caller
    post = await request.post()
    name, role, user = (str(post.get(k, "")) for k in ("name", "role", "user_id"))
    try:
        user_id = uuid.UUID(user) if user else None
    except ValueError:
        return await _tokens_page(request, "user: choose one", 422)
    try:
        async with request.app[POOL].acquire() as conn, conn.transaction():
            token = await accounts.new_token(conn, caller, name, role, user_id)
    except BadRequest as exc:
        return await _tokens_page(request, str(exc), 422)
    return await _tokens_page(request, created={"name": name.strip(), "role": role, "token": token})


async def revoke_token(request: web.Request) -> web.Response:
    """POST /app/admin/tokens/{id}/revoke."""
    caller = await _admin(request)
    if isinstance(caller, web.Response):
        return caller
    try:
        token_id = uuid.UUID(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound(reason="No such token") from None
    async with request.app[POOL].acquire() as conn, conn.transaction():
        if not await accounts.revoke_token(conn, caller, token_id):
            raise web.HTTPNotFound(reason="No such live token")
    raise web.HTTPSeeOther("/app/admin/tokens?done=revoked")


def _shown(value: Any) -> str:
    """A logged value as an admin reads it: text as is (the template escapes it), anything else as JSON."""
    if value is None:
        return "—"
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _changes(row: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The entry's fields for the page: ``old → new`` on an update, the value otherwise."""
    out = []
    for name, value in row["changes"].items():
        if row["action"] == "update" and isinstance(value, list) and len(value) == 2:
            out.append((name, f"{_shown(value[0])} → {_shown(value[1])}"))
        else:
            out.append((name, _shown(value)))
    return out


def _day(raw: str, name: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name}: a date (YYYY-MM-DD)") from None


def _start(day: date | None) -> datetime | None:
    return datetime.combine(day, time(), UTC) if day else None


async def audit_log(request: web.Request) -> web.Response:
    """GET /app/admin/audit?actor=…&entity_type=…&entity_id=…&since=…&until=…: newest first, paged."""
    caller = await _admin(request)
    if isinstance(caller, web.Response):
        return caller
    q = {k: request.query.get(k, "").strip() for k in ("actor", "entity_type", "entity_id", "since", "until")}
    message, rows, more = None, [], None
    try:
        if any("\x00" in v or len(v) > 200 for v in q.values()):
            raise BadRequest("filters: at most 200 characters, no NUL")
        since, until = _day(q["since"], "from"), _day(q["until"], "to")
        filters = audit.Filters(
            q["actor"] or None,
            q["entity_type"] or None,
            q["entity_id"] or None,
            _start(since),
            _start(until + timedelta(days=1)) if until else None,  # "to" includes that day
        )
        after = None
        if cursor := request.query.get("cursor"):
            at, ident = decode_cursor(cursor)
            if not ident.isdigit():
                raise BadRequest("invalid cursor")
            after = (at, int(ident))
        rows = await audit.find(request.app[POOL], filters, after, AUDIT_PAGE + 1)
    except BadRequest as exc:
        message = str(exc)
    if len(rows) > AUDIT_PAGE:
        last = rows[AUDIT_PAGE - 1]
        more = urlencode(q | {"cursor": encode_cursor(last["at"], str(last["id"]))})
    types = await request.app[POOL].fetch(queries.ENTITY_TYPES)
    return render(
        request, "admin/audit.html", status=422 if message else 200, title="Audit log", message=message,
        q=q, rows=[dict(r) | {"shown": _changes(r)} for r in rows[:AUDIT_PAGE]], more=more, types=[("", "any"), *((r[0], r[0]) for r in types)],
        admin_nav=ADMIN_NAV,
    )  # fmt: skip


def pages() -> list[web.AbstractRouteDef]:
    """The admin area's pages."""
    return [
        web.get("/app/admin", users),
        web.post("/app/admin/users", create_user),
        web.post("/app/admin/users/{id}/role", change_role),
        web.post("/app/admin/users/{id}/active", set_active),
        web.post("/app/admin/users/{id}/password-link", password_link),
        web.get("/app/admin/tokens", tokens),
        web.post("/app/admin/tokens", create_token),
        web.post("/app/admin/tokens/{id}/revoke", revoke_token),
        web.get("/app/admin/audit", audit_log),
    ]
