"""What stands before every /api/v1 handler: the bearer token, the role check, body validation, and errors
turned into problem documents."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson
from aiohttp import web

from leadline_crm.http.auth import caller_of
from leadline_crm.http.errors import BadRequest, Conflict, foreign_key_problem
from leadline_crm.http.keys import BODY, CALLER, POOL, ROLE, Handler
from leadline_crm.http.openapi import Operation
from leadline_shared.http import problem


@web.middleware
async def api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate /api/v1 calls and turn errors into problem documents."""
    if not request.path.startswith("/api/v1/"):
        return await handler(request)
    caller = await caller_of(request.app[POOL], request)
    if isinstance(caller, web.Response):
        return caller
    request[CALLER] = caller
    request[ROLE] = caller.role
    try:
        return await handler(request)
    except BadRequest as exc:
        return problem(422, "Unprocessable request", str(exc))
    except Conflict as exc:
        return problem(409, "Conflict", str(exc), **exc.extra)
    except asyncpg.UniqueViolationError as exc:
        return problem(409, "Conflict", f"already exists ({exc.constraint_name or 'unique key'})")
    except asyncpg.ForeignKeyViolationError as exc:
        return foreign_key_problem(request, exc)
    except (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError) as exc:
        return problem(422, "Unprocessable request", f"invalid value: {type(exc).__name__}")
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


async def read_body(request: web.Request, op: Operation) -> dict[str, Any]:
    """The JSON body, validated against the operation's schema (422 naming the first offending field)."""
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise BadRequest("the body is not valid JSON") from None
    errors = list(op.validator.iter_errors(body)) if op.validator is not None else []
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.instance_path) or "body"
        raise BadRequest(f"{where}: {first.message}"[:500])
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def guard(op: Operation) -> Handler:
    """The handler of ``op`` behind its role check and body validation."""

    async def handler(request: web.Request) -> web.StreamResponse:
        require(request, op.roles)
        if op.body is not None:
            request[BODY] = await read_body(request, op)
        return await op.handler(request)

    handler.__doc__ = op.handler.__doc__
    return handler
