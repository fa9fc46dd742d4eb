"""The outbound webhooks' REST API (admins only): subscriptions, their secrets, their delivery log, redelivery."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web

from leadline_crm.http.auth import ADMIN
from leadline_crm.http.errors import BadRequest
from leadline_crm.http.keys import BODY, CALLER, POOL
from leadline_crm.http.openapi import Operation, Param
from leadline_crm.http.params import LIMIT, page_limit
from leadline_crm.http.responses import json_response
from leadline_crm.webhooks import queries, subscriptions
from leadline_crm.webhooks.sealing import SEALER, NoKey
from leadline_crm.webhooks.subscriptions import EVENT_TYPES, NotFound

TAG = "webhooks"
ID = Param("id", "path", {"type": "integer", "minimum": 1}, "the subscription's id")
DELIVERY_ID = Param("id", "path", {"type": "integer", "minimum": 1}, "the delivery's id")
PROPERTIES: dict[str, Any] = {
    "url": {"type": "string", "minLength": 1, "maxLength": 2000, "description": "http or https only"},
    "description": {"type": "string", "maxLength": 500},
    "event_types": {
        "type": "array",
        "items": {"type": "string", "enum": list(EVENT_TYPES)},
        "minItems": 1,
        "maxItems": 50,
        "uniqueItems": True,
    },
    "enabled": {"type": "boolean"},
    "allowed_network": {
        "type": ["string", "null"],
        "maxLength": 50,
        "description": "a private network this subscription may reach (e.g. 10.0.0.0/8); none by default",
    },
    "purpose": {
        "type": "string",
        "enum": list(subscriptions.PURPOSES),
        "description": "marketing: nothing is sent about a person without marketing consent (default operations)",
    },
    "rate_limit": {
        "type": "number",
        "exclusiveMinimum": 0,
        "maximum": subscriptions.MAX_RATE,
        "description": f"at most this many deliveries a second to the URL (default {subscriptions.DEFAULT_RATE:g})",
    },
}
CREATE_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["url", "event_types"],
    "properties": PROPERTIES,
}
UPDATE_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": PROPERTIES,
}
STATUS = Param(
    "status", "query", {"type": "string", "enum": ["pending", "delivered", "failed", "dead"]}, "only these"
)
BEFORE = Param("before", "query", {"type": "integer", "minimum": 1}, "deliveries older than this id (paging)")
OVERLAP = Param(
    "overlap_seconds",
    "query",
    {"type": "integer", "minimum": 0, "maximum": 604800, "default": 86400},
    "how long the old secret keeps signing beside the new one",
)


def _id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 9:
        raise web.HTTPNotFound(text="no such id")
    return int(raw)


def _int_query(request: web.Request, name: str, default: int | None) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or len(raw) > 12:
        raise BadRequest(f"{name}: a whole number")
    return int(raw)


def _shown(row: Any) -> dict[str, Any]:
    return dict(row)


async def list_subscriptions(request: web.Request) -> web.Response:
    """GET /api/v1/webhooks."""
    rows = await request.app[POOL].fetch(queries.SUBSCRIPTIONS)
    return json_response({"items": [_shown(r) for r in rows], "next": None})


async def create_subscription(request: web.Request) -> web.Response:
    """POST /api/v1/webhooks: the answer carries the signing secret, the only time it is shown."""
    try:
        async with request.app[POOL].acquire() as conn, conn.transaction():
            row, secret = await subscriptions.create(
                conn, request[CALLER], request[BODY], request.app[SEALER]
            )
    except NoKey as exc:
        raise web.HTTPServiceUnavailable(text=str(exc)) from None
    return json_response(_shown(row) | {"secret": secret}, status=201)


async def get_subscription(request: web.Request) -> web.Response:
    """GET /api/v1/webhooks/{id}."""
    try:
        row = await subscriptions.get(request.app[POOL], _id(request))
    except NotFound as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    return json_response(_shown(row))


async def update_subscription(request: web.Request) -> web.Response:
    """PATCH /api/v1/webhooks/{id}."""
    try:
        async with request.app[POOL].acquire() as conn, conn.transaction():
            row = await subscriptions.update(conn, request[CALLER], _id(request), request[BODY])
    except NotFound as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    return json_response(_shown(row))


async def delete_subscription(request: web.Request) -> web.Response:
    """DELETE /api/v1/webhooks/{id}."""
    try:
        async with request.app[POOL].acquire() as conn, conn.transaction():
            await subscriptions.delete(conn, request[CALLER], _id(request))
    except NotFound as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    return web.Response(status=204)


async def rotate_secret(request: web.Request) -> web.Response:
    """POST /api/v1/webhooks/{id}/rotate-secret?overlap_seconds=…: the new secret, shown once."""
    overlap = timedelta(seconds=_int_query(request, "overlap_seconds", 86400) or 0)
    try:
        async with request.app[POOL].acquire() as conn, conn.transaction():
            secret = await subscriptions.rotate(
                conn, request[CALLER], _id(request), request.app[SEALER], overlap
            )
    except NotFound as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    except NoKey as exc:
        raise web.HTTPServiceUnavailable(text=str(exc)) from None
    return json_response({"secret": secret, "overlap_seconds": overlap.total_seconds()})


async def test_subscription(request: web.Request) -> web.Response:
    """POST /api/v1/webhooks/{id}/test: queue a 'ping' delivery."""
    try:
        async with request.app[POOL].acquire() as conn, conn.transaction():
            await subscriptions.ping(conn, request[CALLER], _id(request))
    except NotFound as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    return json_response({"queued": True}, status=202)


async def list_deliveries(request: web.Request) -> web.Response:
    """GET /api/v1/webhooks/{id}/deliveries: newest first; ``next`` is the ``before`` of the next page."""
    pool = request.app[POOL]
    status = request.query.get("status") or None
    if status not in (None, "pending", "delivered", "failed", "dead"):
        raise BadRequest("status: pending, delivered, failed or dead")
    limit = page_limit(request)
    try:
        subscription_id = (await subscriptions.get(pool, _id(request)))["id"]
    except NotFound as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    rows = await subscriptions.deliveries(
        pool, subscription_id, status, _int_query(request, "before", None), limit + 1
    )
    nxt = str(rows[limit - 1]["id"]) if len(rows) > limit else None
    return json_response({"items": [dict(r) for r in rows[:limit]], "next": nxt})


async def redeliver(request: web.Request) -> web.Response:
    """POST /api/v1/webhook-deliveries/{id}/redeliver: the same message again, due now."""
    try:
        async with request.app[POOL].acquire() as conn, conn.transaction():
            row = await subscriptions.redeliver(conn, request[CALLER], _id(request))
    except NotFound as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    return json_response(dict(row), status=202)


def operations() -> list[Operation]:
    """The webhooks' REST operations."""
    base = "/api/v1/webhooks"
    return [
        Operation("GET", base, list_subscriptions, "Webhook subscriptions", ADMIN, TAG),
        Operation(
            "POST", base, create_subscription,
            "Subscribe a URL to event types; the answer's secret is shown only this once", ADMIN, TAG,
            body=CREATE_BODY, status=201, errors=(503,),
        ),
        Operation("GET", f"{base}/{{id}}", get_subscription, "A webhook subscription", ADMIN, TAG, params=(ID,)),
        Operation(
            "PATCH", f"{base}/{{id}}", update_subscription,
            "Change a subscription (enabling it again clears its failing streak)", ADMIN, TAG,
            params=(ID,), body=UPDATE_BODY,
        ),
        Operation(
            "DELETE", f"{base}/{{id}}", delete_subscription, "Delete a subscription and its delivery log",
            ADMIN, TAG, params=(ID,), status=204,
        ),
        Operation(
            "POST", f"{base}/{{id}}/rotate-secret", rotate_secret,
            "A new signing secret; the old one keeps signing beside it for the overlap", ADMIN, TAG,
            params=(ID, OVERLAP), errors=(503,),
        ),
        Operation(
            "POST", f"{base}/{{id}}/test", test_subscription, "Queue a 'ping' delivery", ADMIN, TAG,
            params=(ID,), status=202, errors=(409,),
        ),
        Operation(
            "GET", f"{base}/{{id}}/deliveries", list_deliveries,
            "The delivery log: status, attempts, response status and time, a short excerpt of the answer",
            ADMIN, TAG, params=(ID, STATUS, BEFORE, LIMIT),
        ),
        Operation(
            "POST", "/api/v1/webhook-deliveries/{id}/redeliver", redeliver,
            "Send a delivery again (same webhook-id), due now", ADMIN, TAG, params=(DELIVERY_ID,), status=202,
        ),
    ]  # fmt: skip
