"""The REST API under /api/v1: bearer-token auth, role checks, problem+json errors, cursor pagination.

Operations are declared in the modules that implement them (persons.py, catalog.py, links.py and here) on one
:class:`~leadline_crm.openapi.Registry`; :func:`add_routes` installs them with :func:`guard`, which checks the
caller's role and validates the body against the operation's JSON Schema before the handler runs.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
import orjson
from aiohttp import web

from leadline_crm import queries
from leadline_crm.auth import Caller, caller_of
from leadline_crm.openapi import ROLES_ALL, Operation, Param, Registry
from leadline_shared.http import problem

POOL = web.AppKey("crm_pool", asyncpg.Pool)
PHONE_REGION = web.AppKey("phone_region", str)  # LEADLINE_PHONE_REGION, for phones typed without +country
ROLE = web.RequestKey("role", str)
CALLER = web.RequestKey("caller", Caller)
BODY = web.RequestKey("body", dict[str, Any])
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
READ_ROLES = ROLES_ALL
API = Registry()
LIMIT = Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}, "page size")
CURSOR = Param("cursor", "query", {"type": "string"}, "the `next` value of the previous page")


class BadRequest(Exception):
    """Input the API rejects with 422 and a detail naming the parameter."""


class Conflict(Exception):
    """A 409: the request collides with an existing record (named in ``extra``)."""

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.extra = extra


@dataclass(frozen=True)
class ForeignKey:
    """What a foreign key means to an API caller: the field holding the reference, the kind of record it points
    at, and (for a refused delete) the records that still point at it."""

    field: str
    target: str
    referrers: str


# Every foreign key of the schema (a test checks none is missing), so that a violation is reported as the field
# the caller sent and what it should point at, never as a constraint name the caller cannot know.
FOREIGN_KEYS: dict[str, ForeignKey] = {
    "api_tokens_user_id_fkey": ForeignKey("user_id", "user", "API tokens"),
    "stage_transitions_person_id_fkey": ForeignKey("person_id", "person", "stage changes"),
    "ads_affiliate_id_fkey": ForeignKey("affiliate_id", "affiliate", "ads"),
    "ads_campaign_id_fkey": ForeignKey("campaign_id", "campaign", "ads"),
    "email_sends_campaign_id_fkey": ForeignKey("campaign_id", "campaign", "email sends"),
    "email_sends_person_id_fkey": ForeignKey("person_id", "person", "email sends"),
    "purchases_person_id_fkey": ForeignKey("person_id", "person", "purchases"),
    "purchases_product_id_fkey": ForeignKey("product_id", "product", "purchases"),
    "purchases_sales_rep_fkey": ForeignKey("sales_rep", "user", "purchases"),
    "feedback_person_id_fkey": ForeignKey("person_id", "person", "feedback entries"),
    "activities_person_id_fkey": ForeignKey("person_id", "person", "activities"),
    "activities_rep_id_fkey": ForeignKey("rep_id", "user", "activities"),
}


def foreign_key_problem(request: web.Request, exc: asyncpg.ForeignKeyViolationError) -> web.Response:
    """The problem document of a foreign-key violation: 409 when a delete would leave references behind, else a
    422 naming the field and the record it should point at (``campaign_id: no campaign with id …``)."""
    fk = FOREIGN_KEYS.get(exc.constraint_name or "")
    if fk is None:
        return problem(422, "Unprocessable request", "refers to a record that does not exist")
    if request.method == "DELETE":
        return problem(409, "Conflict", f"{fk.referrers} still refer to this {fk.target}")
    value = request.get(BODY, {}).get(fk.field)
    detail = f"no {fk.target} with id {value}" if value is not None else f"no such {fk.target}"
    return problem(422, "Unprocessable request", f"{fk.field}: {detail}", field=fk.field)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, uuid.UUID):  # asyncpg's own UUID class, which orjson does not know
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def json_response(doc: Any, status: int = 200) -> web.Response:
    """JSON encoded with orjson (datetimes as ISO 8601, UUIDs as strings, money as numbers)."""
    return web.Response(
        body=orjson.dumps(doc, default=_default), status=status, content_type="application/json"
    )


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


def uuid_param(request: web.Request, name: str = "id") -> uuid.UUID:
    """A UUID path parameter; 404 when it is not one (no such record can exist)."""
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError:
        raise web.HTTPNotFound(text=f"no such {name}") from None


def query_uuid(request: web.Request, name: str) -> uuid.UUID | None:
    """An optional UUID query parameter; 422 when malformed."""
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a UUID") from None


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
    items = [orjson.Fragment(row["event"]) for row in rows[:limit]]  # stored JSON text, sent as is
    nxt = (
        encode_cursor(rows[limit - 1]["occurred_at"], rows[limit - 1]["event_id"])
        if len(rows) > limit
        else None
    )
    return json_response({"items": items, "next": nxt})


API.add(
    Operation(
        "GET",
        "/api/v1/events",
        list_events,
        "Raw touchpoints of a visitor (anon_id) or a person (person_id), newest first",
        READ_ROLES,
        "events",
        params=(
            Param("anon_id", "query", {"type": "string"}, "the visitor cookie"),
            Param("person_id", "query", {"type": "string", "format": "uuid"}, "the person"),
            LIMIT,
            CURSOR,
        ),
    )
)


def add_routes(app: web.Application) -> None:
    """Install every declared operation, the OpenAPI document and the docs page."""
    from leadline_crm import catalog, links, persons  # noqa: F401  (they declare their operations on API)

    API.install(app, guard)

    async def openapi_json(request: web.Request) -> web.Response:
        """The OpenAPI 3 document, generated from the declared operations."""
        return json_response(API.document("Leadline crm-core API", "1"))

    async def docs(request: web.Request) -> web.Response:
        """A readable list of the operations (no external assets)."""
        return web.Response(text=API.docs_page("Leadline crm-core API"), content_type="text/html")

    app.router.add_get("/api/openapi.json", openapi_json)
    app.router.add_get("/api/docs", docs)
