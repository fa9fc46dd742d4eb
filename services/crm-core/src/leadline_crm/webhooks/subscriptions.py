"""Subscriptions as an admin changes them, through the API or the settings pages (both call these functions).

Every change is checked the same way (the URL is http(s) and its host resolves only to addresses the subscription
may reach, see safety.py), audited (never the secret), and made in the caller's transaction. A secret is returned
only by :func:`create` and :func:`rotate`: it is shown once and never again, and stored only sealed (sealing.py).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from leadline_crm.http import audit
from leadline_crm.http.auth import Caller
from leadline_crm.http.errors import BadRequest, Conflict
from leadline_crm.webhooks import fanout, queries, safety, signing
from leadline_crm.webhooks.sealing import Sealer

EVENT_TYPES = (
    "person.created",
    "person.stage_changed",
    "lead.assigned",
    "form.submitted",
    "score.changed",
    "deal.stage_changed",
    "deal.won",
    "purchase.created",
    "case.created",
    "case.updated",
    "case.breached",
    "event.custom",
)
"""What a subscription may ask for (the automation loop's domain events); a workflow's "send webhook" action
reaches its subscription whatever the types."""

FIELDS = ("url", "description", "event_types", "enabled", "allowed_network", "rate_limit", "purpose")
PURPOSES = ("operations", "marketing")
"""What a receiver is for: a marketing one is told nothing about a person without marketing consent (fanout.py)."""
ENTITY = "webhook_subscriptions"
DEFAULT_OVERLAP = timedelta(hours=24)
DEFAULT_RATE = 100.0
"""Deliveries a second to one subscription unless its admin sets another rate (migration 0061's default)."""
MAX_RATE = 10_000.0
MAX_OVERLAP = timedelta(days=7)


class NotFound(LookupError):
    """No such subscription or delivery."""


def _network(value: Any) -> str | None:
    try:
        network = safety.parse_network(value)
    except ValueError:
        raise BadRequest("allowed_network: a network such as 10.0.0.0/8 or an address") from None
    return str(network) if network is not None else None


def _rate(value: Any) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        rate = -1.0
    if isinstance(value, bool) or not 0 < rate <= MAX_RATE:
        raise BadRequest(f"rate_limit: deliveries per second, more than 0 and at most {MAX_RATE:,.0f}")
    return rate


def _types(value: Any) -> list[str]:
    types = sorted(set(value or ()))
    unknown = [t for t in types if t not in EVENT_TYPES]
    if not types or unknown:
        raise BadRequest(f"event_types: choose one or more of {', '.join(EVENT_TYPES)}")
    return types


async def _checked(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` normalised, the URL vetted against the (new) allowed network; BadRequest naming the field."""
    out = dict(values)
    for name in ("url", "description"):
        if any(ord(c) < 32 for c in str(out.get(name) or "")):
            raise BadRequest(f"{name}: no control characters")
    if "description" in out:
        out["description"] = str(out["description"] or "").strip()[:500]
    if "event_types" in out:
        out["event_types"] = _types(out["event_types"])
    if "allowed_network" in out:
        out["allowed_network"] = _network(out["allowed_network"])
    if "rate_limit" in out:
        out["rate_limit"] = _rate(out["rate_limit"])
    if "purpose" in out and out["purpose"] not in PURPOSES:
        raise BadRequest("purpose: operations or marketing")
    if "url" in out:
        out["url"] = str(out["url"]).strip()
        try:
            await safety.vet_url(out["url"], safety.parse_network(out.get("allowed_network")))
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
    return out


async def create(
    conn: asyncpg.Connection, caller: Caller, body: dict[str, Any], sealer: Sealer
) -> tuple[asyncpg.Record, str]:
    """A new subscription and its secret (the only time the secret is shown); NoKey when secrets cannot be
    sealed (no key configured)."""
    values = await _checked({"description": "", "enabled": True, "allowed_network": None, **body})
    secret = signing.new_secret()
    row = await conn.fetchrow(
        queries.CREATE, values["url"], values["description"], values["event_types"], bool(values["enabled"]),
        values["allowed_network"], sealer.seal(secret), caller.actor, values.get("rate_limit", DEFAULT_RATE),
        values.get("purpose", PURPOSES[0]),
    )  # fmt: skip
    await audit.record(conn, caller, "create", ENTITY, row["id"], audit.values(row, FIELDS))
    return row, secret


async def get(conn: asyncpg.Connection | asyncpg.Pool, subscription_id: int) -> asyncpg.Record:
    """One subscription (without its secrets); NotFound when there is none."""
    row = await conn.fetchrow(queries.SUBSCRIPTION, subscription_id)
    if row is None:
        raise NotFound(f"no webhook subscription {subscription_id}")
    return row


async def update(
    conn: asyncpg.Connection, caller: Caller, subscription_id: int, body: dict[str, Any]
) -> asyncpg.Record:
    """Change a subscription. Enabling it again clears its failing streak and the reason it was disabled."""
    old = await conn.fetchrow(queries.SUBSCRIPTION_FOR_UPDATE, subscription_id)
    if old is None:
        raise NotFound(f"no webhook subscription {subscription_id}")
    values = dict(body)
    if "url" in values or "allowed_network" in values:  # a narrower network must still admit the URL
        values.setdefault("url", old["url"])
        values.setdefault("allowed_network", old["allowed_network"])
    values = {k: v for k, v in (await _checked(values)).items() if k in FIELDS}
    sets = [
        f"{name} = ${i}" + ("::cidr" if name == "allowed_network" else "") for i, name in enumerate(values, 2)
    ]
    if values.get("enabled") and not old["enabled"]:
        sets += [
            "consecutive_failures = 0",
            "failing_since = NULL",
            "disabled_at = NULL",
            "disabled_reason = NULL",
        ]
    sets.append("updated_at = now()")
    row: asyncpg.Record = await conn.fetchrow(
        f"UPDATE webhook_subscriptions SET {', '.join(sets)} WHERE id = $1 RETURNING {queries.COLUMNS}",  # noqa: S608
        subscription_id,
        *values.values(),
    )
    changes = audit.diff(old, row, values)
    if changes:
        await audit.record(conn, caller, "update", ENTITY, subscription_id, changes)
    return row


async def rotate(
    conn: asyncpg.Connection,
    caller: Caller,
    subscription_id: int,
    sealer: Sealer,
    overlap: timedelta = DEFAULT_OVERLAP,
) -> str:
    """A new secret; the old one keeps signing beside it for ``overlap`` (none: it stops at once)."""
    if not timedelta(0) <= overlap <= MAX_OVERLAP:
        raise BadRequest("overlap_seconds: between 0 and 604800 (7 days)")
    await get(conn, subscription_id)
    secret = signing.new_secret()
    sealed = sealer.seal(secret)
    await conn.execute(queries.ROTATE, subscription_id, sealed, overlap.total_seconds(), datetime.now(UTC))
    await audit.record(
        conn, caller, "rotate_secret", ENTITY, subscription_id, {"overlap_seconds": overlap.total_seconds()}
    )
    return secret


async def delete(conn: asyncpg.Connection, caller: Caller, subscription_id: int) -> None:
    """Delete a subscription and its delivery log."""
    row = await get(conn, subscription_id)
    await conn.execute(queries.DELETE, subscription_id)
    await audit.record(conn, caller, "delete", ENTITY, subscription_id, audit.values(row, FIELDS))


async def ping(conn: asyncpg.Connection, caller: Caller, subscription_id: int) -> None:
    """Queue a 'ping' delivery to try the receiver (Conflict when the subscription is disabled)."""
    row = await get(conn, subscription_id)
    if not row["enabled"]:
        raise Conflict("the subscription is disabled; enable it first")
    key = f"ping:{subscription_id}:{secrets.token_hex(8)}"
    await fanout.enqueue(conn, subscription_id, "ping", {"subscription_id": subscription_id}, key=key)


async def redeliver(
    conn: asyncpg.Connection, caller: Caller, delivery_id: int, subscription_id: int | None = None
) -> asyncpg.Record:
    """Send a delivery again (same message id), due now with its retry schedule started over."""
    row = await conn.fetchrow(queries.REDELIVER, delivery_id, datetime.now(UTC), subscription_id)
    if row is None:
        raise NotFound(f"no webhook delivery {delivery_id}")
    await conn.execute(queries.NOTIFY)
    await audit.record(conn, caller, "redeliver", "webhook_deliveries", delivery_id, {})
    return row


async def deliveries(
    pool: asyncpg.Pool, subscription_id: int, status: str | None, before: int | None, limit: int
) -> list[asyncpg.Record]:
    """A subscription's delivery log, newest first."""
    rows: list[asyncpg.Record] = await pool.fetch(queries.DELIVERIES, subscription_id, status, before, limit)
    return rows
