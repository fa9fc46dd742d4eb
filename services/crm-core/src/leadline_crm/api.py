"""The REST API under /api/v1: bearer-token auth, problem+json errors, cursor pagination."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from aiohttp import web

from leadline_crm import queries
from leadline_crm.auth import role_of
from leadline_shared.http import problem

POOL = web.AppKey("crm_pool", asyncpg.Pool)
ROLE = web.RequestKey("role", str)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
READ_ROLES = frozenset({"admin", "sales", "marketing", "service", "read_only"})


class BadRequest(Exception):
    """Input the API rejects with 422 and a detail naming the parameter."""


def json_response(doc: Any, status: int = 200) -> web.Response:
    """JSON encoded with orjson (datetimes as ISO 8601)."""
    return web.Response(body=orjson.dumps(doc), status=status, content_type="application/json")


@web.middleware
async def api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate /api/v1 calls and turn errors into problem documents."""
    if not request.path.startswith("/api/v1/"):
        return await handler(request)
    role = await role_of(request.app[POOL], request)
    if isinstance(role, web.Response):
        return role
    request[ROLE] = role
    try:
        return await handler(request)
    except BadRequest as exc:
        return problem(422, "Unprocessable request", str(exc))
    except web.HTTPException as exc:
        if exc.status >= 400:
            return problem(
                exc.status, exc.reason, exc.text if exc.text != f"{exc.status}: {exc.reason}" else None
            )
        raise


def require(request: web.Request, roles: frozenset[str]) -> None:
    """403 unless the caller's role is one of ``roles``."""
    if request[ROLE] not in roles:
        raise web.HTTPForbidden(text=f"role {request[ROLE]!r} may not do this")


def encode_cursor(occurred_at: datetime, event_id: str) -> str:
    """An opaque cursor: where the next page starts."""
    return base64.urlsafe_b64encode(orjson.dumps([occurred_at.isoformat(), event_id])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Undo :func:`encode_cursor`; 422 on anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        when, event_id = orjson.loads(raw)
        return datetime.fromisoformat(when), str(event_id)
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise BadRequest("invalid cursor") from None


def page_limit(request: web.Request, default: int = 50, maximum: int = 500) -> int:
    """The ``limit`` parameter, checked."""
    raw = request.query.get("limit", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise BadRequest(f"limit must be an integer from 1 to {maximum}")
    return int(raw)


async def list_events(request: web.Request) -> web.Response:
    """GET /api/v1/events?anon_id=…|person_id=…: raw touchpoints, newest first."""
    require(request, READ_ROLES)
    filters = [(k, request.query[k]) for k in ("anon_id", "person_id") if request.query.get(k)]
    if len(filters) != 1:
        raise BadRequest("give exactly one of anon_id or person_id")
    column, value = filters[0]
    if column == "person_id":
        try:
            value = str(uuid.UUID(value))
        except ValueError:
            raise BadRequest("person_id must be a UUID") from None
    limit = page_limit(request)
    after: tuple[datetime | None, str | None] = (None, None)
    if cursor := request.query.get("cursor"):
        after = decode_cursor(cursor)
    sql = queries.EVENTS_PAGE.format(column="anon_id" if column == "anon_id" else "person_id::text")
    rows = await request.app[POOL].fetch(sql, value, after[0], after[1], limit + 1)
    items = [row["event"] for row in rows[:limit]]
    nxt = (
        encode_cursor(rows[limit - 1]["occurred_at"], rows[limit - 1]["event_id"])
        if len(rows) > limit
        else None
    )
    return json_response({"items": items, "next": nxt})


def add_routes(app: web.Application) -> None:
    """Install the API routes."""
    app.router.add_get("/api/v1/events", list_events)
