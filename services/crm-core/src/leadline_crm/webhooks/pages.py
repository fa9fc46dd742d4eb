"""The webhook settings pages under /app/settings/webhooks (admins): the subscriptions, a form to add one, and
each subscription's page with its status, delivery log (status, response time, redeliver), secret rotation, a
test ping, enable/disable and delete. A secret appears only on the page answering its creation or rotation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web

from leadline_crm.catalog.pages import settings_nav
from leadline_crm.http.auth import ADMIN, Caller
from leadline_crm.http.errors import BadRequest, Conflict
from leadline_crm.http.keys import POOL
from leadline_crm.http.pages import forbidden, may, signed_in
from leadline_crm.http.templating import render
from leadline_crm.webhooks import queries, subscriptions
from leadline_crm.webhooks.sealing import SEALER, NoKey
from leadline_crm.webhooks.subscriptions import EVENT_TYPES, NotFound

BASE = "/app/settings/webhooks"
LOG_PAGE = 50
DONE = {  # ?done=… after a redirect: fixed sentences, never text from the URL
    "saved": "Subscription saved.",
    "enabled": "Subscription enabled; its queued deliveries go out now.",
    "disabled": "Subscription disabled; new events are not queued for it.",
    "ping": "A ping delivery was queued.",
    "redeliver": "The delivery was queued again.",
    "deleted": "Subscription deleted.",
}


def _nav() -> list[tuple[str, str]]:
    return [*settings_nav(), (BASE, "Webhooks")]


async def _admin(request: web.Request) -> Caller | web.Response:
    caller = await signed_in(request)
    return caller if may(caller, ADMIN) else forbidden(request)


def _id(request: web.Request, name: str = "id") -> int:
    raw = request.match_info[name]
    if not raw.isdigit() or len(raw) > 9:
        raise web.HTTPNotFound(reason="No such webhook subscription")
    return int(raw)


def _form(post: Any) -> dict[str, Any]:
    """The subscription form's values as the API takes them."""
    return {
        "url": str(post.get("url", "")).strip(),
        "description": str(post.get("description", "")),
        "event_types": [str(v) for v in post.getall("event_types", [])],
        "enabled": str(post.get("enabled", "")) == "true",
        "allowed_network": str(post.get("allowed_network", "")).strip() or None,
        "rate_limit": str(post.get("rate_limit", "")).strip() or subscriptions.DEFAULT_RATE,
        "purpose": str(post.get("purpose", "")) or subscriptions.PURPOSES[0],
    }


async def list_page(request: web.Request) -> web.Response:
    """GET /app/settings/webhooks."""
    caller = await _admin(request)
    if isinstance(caller, web.Response):
        return caller
    rows = await request.app[POOL].fetch(queries.SUBSCRIPTIONS)
    return render(
        request, "webhooks/list.html", title="Webhooks", settings_nav=_nav(), subscriptions=rows,
        notice=DONE.get(request.query.get("done", "")),
    )  # fmt: skip


def _new_page(
    request: web.Request, form: dict[str, Any] | None = None, message: str | None = None, status: int = 200
) -> web.Response:
    form = form or {"url": "", "description": "", "event_types": [], "enabled": True, "allowed_network": "",
                    "rate_limit": subscriptions.DEFAULT_RATE, "purpose": subscriptions.PURPOSES[0]}  # fmt: skip
    return render(
        request, "webhooks/new.html", title="New webhook", settings_nav=_nav(), form=form, types=EVENT_TYPES,
        message=message, status=status,
    )  # fmt: skip


async def new_page(request: web.Request) -> web.Response:
    """GET /app/settings/webhooks/new."""
    caller = await _admin(request)
    if isinstance(caller, web.Response):
        return caller
    return _new_page(request)


async def create(request: web.Request) -> web.Response:
    """POST /app/settings/webhooks: the subscription's page, with its secret shown this once."""
    caller = await _admin(request)
    if isinstance(caller, web.Response):
        return caller
    form = _form(await request.post())
    form["enabled"] = True
    try:
        async with request.app[POOL].acquire() as conn, conn.transaction():
            row, secret = await subscriptions.create(conn, caller, form, request.app[SEALER])
    except BadRequest as exc:
        return _new_page(request, form, str(exc), 422)
    except NoKey as exc:
        return _new_page(request, form, f"{exc}; ask whoever runs Leadline to set it.", 503)
    return await _subscription_page(request, row["id"], secret=secret, notice="Subscription created.")


async def _subscription_page(
    request: web.Request,
    subscription_id: int,
    *,
    secret: str | None = None,
    notice: str | None = None,
    message: str | None = None,
    status: int = 200,
    form: dict[str, Any] | None = None,
) -> web.Response:
    pool = request.app[POOL]
    try:
        row = await subscriptions.get(pool, subscription_id)
    except NotFound:
        raise web.HTTPNotFound(reason="No such webhook subscription") from None
    log = await subscriptions.deliveries(pool, subscription_id, None, None, LOG_PAGE)
    stats = await pool.fetchrow(queries.STATS, subscription_id)
    return render(
        request, "webhooks/subscription.html", title=f"Webhook {subscription_id}", settings_nav=_nav(),
        sub=row, form=form or dict(row), types=EVENT_TYPES, log=log, stats=stats, secret=secret,
        notice=notice or DONE.get(request.query.get("done", "")), message=message, status=status,
    )  # fmt: skip


async def subscription_page(request: web.Request) -> web.Response:
    """GET /app/settings/webhooks/{id}."""
    caller = await _admin(request)
    if isinstance(caller, web.Response):
        return caller
    return await _subscription_page(request, _id(request))


async def _change(request: web.Request, body: dict[str, Any], done: str) -> web.Response:
    caller = await _admin(request)
    if isinstance(caller, web.Response):
        return caller
    subscription_id = _id(request)
    try:
        async with request.app[POOL].acquire() as conn, conn.transaction():
            await subscriptions.update(conn, caller, subscription_id, body)
    except NotFound:
        raise web.HTTPNotFound(reason="No such webhook subscription") from None
    except BadRequest as exc:
        return await _subscription_page(request, subscription_id, message=str(exc), status=422, form=body)
    raise web.HTTPSeeOther(f"{BASE}/{subscription_id}?done={done}")


async def update(request: web.Request) -> web.Response:
    """POST /app/settings/webhooks/{id}: URL, description, event types, allowed network."""
    form = _form(await request.post())
    form.pop("enabled")
    return await _change(request, form, "saved")


async def set_enabled(request: web.Request) -> web.Response:
    """POST /app/settings/webhooks/{id}/enabled: enabled=true or false."""
    enabled = str((await request.post()).get("enabled", "")) == "true"
    return await _change(request, {"enabled": enabled}, "enabled" if enabled else "disabled")


async def rotate(request: web.Request) -> web.Response:
    """POST /app/settings/webhooks/{id}/rotate: the new secret, shown on this answer only."""
    caller = await _admin(request)
    if isinstance(caller, web.Response):
        return caller
    subscription_id = _id(request)
    raw = str((await request.post()).get("overlap_hours", "24"))
    try:
        overlap = timedelta(hours=float(raw))
        async with request.app[POOL].acquire() as conn, conn.transaction():
            secret = await subscriptions.rotate(conn, caller, subscription_id, request.app[SEALER], overlap)
    except NotFound:
        raise web.HTTPNotFound(reason="No such webhook subscription") from None
    except NoKey as exc:
        return await _subscription_page(request, subscription_id, message=str(exc), status=503)
    except (BadRequest, ValueError, OverflowError):
        return await _subscription_page(
            request, subscription_id, message="overlap: between 0 and 168 hours", status=422
        )
    hours = overlap / timedelta(hours=1)
    notice = f"New secret made; the old one keeps signing beside it for {hours:g} hours."
    return await _subscription_page(request, subscription_id, secret=secret, notice=notice)


async def ping(request: web.Request) -> web.Response:
    """POST /app/settings/webhooks/{id}/test."""
    caller = await _admin(request)
    if isinstance(caller, web.Response):
        return caller
    subscription_id = _id(request)
    try:
        async with request.app[POOL].acquire() as conn, conn.transaction():
            await subscriptions.ping(conn, caller, subscription_id)
    except NotFound:
        raise web.HTTPNotFound(reason="No such webhook subscription") from None
    except Conflict as exc:
        return await _subscription_page(request, subscription_id, message=str(exc), status=409)
    raise web.HTTPSeeOther(f"{BASE}/{subscription_id}?done=ping")


async def redeliver(request: web.Request) -> web.Response:
    """POST /app/settings/webhooks/{id}/deliveries/{delivery}/redeliver."""
    caller = await _admin(request)
    if isinstance(caller, web.Response):
        return caller
    subscription_id = _id(request)
    try:
        async with request.app[POOL].acquire() as conn, conn.transaction():
            await subscriptions.redeliver(conn, caller, _id(request, "delivery"), subscription_id)
    except NotFound:
        raise web.HTTPNotFound(reason="No such delivery") from None
    raise web.HTTPSeeOther(f"{BASE}/{subscription_id}?done=redeliver")


async def delete(request: web.Request) -> web.Response:
    """POST /app/settings/webhooks/{id}/delete."""
    caller = await _admin(request)
    if isinstance(caller, web.Response):
        return caller
    try:
        async with request.app[POOL].acquire() as conn, conn.transaction():
            await subscriptions.delete(conn, caller, _id(request))
    except NotFound:
        raise web.HTTPNotFound(reason="No such webhook subscription") from None
    raise web.HTTPSeeOther(f"{BASE}?done=deleted")


def pages() -> list[web.AbstractRouteDef]:
    """The webhook settings pages (the fixed paths first)."""
    return [
        web.get(BASE, list_page),
        web.get(f"{BASE}/new", new_page),
        web.post(BASE, create),
        web.get(f"{BASE}/{{id}}", subscription_page),
        web.post(f"{BASE}/{{id}}", update),
        web.post(f"{BASE}/{{id}}/enabled", set_enabled),
        web.post(f"{BASE}/{{id}}/rotate", rotate),
        web.post(f"{BASE}/{{id}}/test", ping),
        web.post(f"{BASE}/{{id}}/delete", delete),
        web.post(f"{BASE}/{{id}}/deliveries/{{delivery}}/redeliver", redeliver),
    ]
