"""Queueing deliveries: one row per (event, subscription) in the transaction that consumes the event.

The automation loop hands each batch of domain events to :func:`on_events` on the connection of the transaction
that deletes them, so a delivery is queued exactly when its event is consumed, and both are lost or kept together.
The message id (the Standard Webhooks ``webhook-id``) is derived from the event's type and source key, so an event
replayed from Kafka (same source key) conflicts on ``UNIQUE (subscription_id, msg_id)`` and queues nothing twice;
a workflow's "send webhook" action does the same through :func:`enqueue` with its own key.

Payloads carry ids and the changed fields only. Whatever the event's data holds, fields that are personal contact
data (e-mail, phone, names, addresses, free text) are dropped (:func:`scrub`): a receiver that needs them asks the
API, where consent and roles apply. Consent decides who is told at all: a subscription whose purpose is marketing
(an e-mail, ads or nurture tool) is queued nothing about a person without marketing consent, and the dispatcher
checks again at each send (a withdrawal stops what is queued or being retried too); an operations subscription (a
sales, support or finance tool) gets its ids and changed fields whatever the person said, as a contract or a case
needs them, and never contact data.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson

from leadline_crm.webhooks import queries

if TYPE_CHECKING:
    from leadline_crm.automation.events import DomainEvent

PERSONAL = frozenset(
    {"name", "first_name", "last_name", "full_name", "address", "street", "city", "postal_code", "zip", "ip",
     "user_agent", "birthday", "birth_date", "notes", "note", "description", "comment", "body", "text", "message",
     "subject_line", "title_text"}
)  # fmt: skip
PERSONAL_PARTS = ("email", "phone", "mobile", "password", "secret", "token")


def msg_id(kind: str, key: str) -> str:
    """A stable message id of a cause: the same cause, replayed, gives the same id."""
    digest = hashlib.sha256(f"{kind}\x1f{key}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


def scrub(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` without personal contact fields (nested objects too)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        low = key.lower()
        if low in PERSONAL or any(part in low for part in PERSONAL_PARTS):
            continue
        out[key] = scrub(value) if isinstance(value, Mapping) else value
    return out


def _default(value: Any) -> Any:
    return str(value)  # UUIDs (asyncpg's own class), Decimals


def payload(event_type: str, timestamp: datetime, data: Mapping[str, Any]) -> str:
    """The JSON body of a delivery: ``{"type", "timestamp", "data"}``."""
    doc = {"type": event_type, "timestamp": timestamp.astimezone(UTC).isoformat(), "data": scrub(data)}
    return orjson.dumps(doc, default=_default).decode()


def _event_data(event: DomainEvent) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if event.person_id is not None:
        data["person_id"] = str(event.person_id)
    if event.subject is not None:
        data["subject"] = event.subject
    return data | dict(event.data)


async def on_events(conn: asyncpg.Connection, events: Sequence[DomainEvent]) -> None:
    """The automation loop's handler: queue a delivery of each event to every enabled subscription of its type."""
    if not events:
        return
    subscribed = set(await conn.fetchval(queries.SUBSCRIBED_TYPES) or ())
    wanted = [e for e in events if e.type in subscribed]
    if not wanted:
        return
    status = await conn.execute(
        queries.FANOUT,
        [e.type for e in wanted],
        [msg_id(e.type, e.source_key) for e in wanted],
        [payload(e.type, e.occurred_at, _event_data(e)) for e in wanted],
        [e.person_id for e in wanted],
    )
    if not status.endswith(" 0"):
        await conn.execute(queries.NOTIFY)


async def enqueue(
    conn: asyncpg.Connection,
    subscription_id: int,
    event_type: str,
    data: Mapping[str, Any],
    *,
    key: str,
    person: uuid.UUID | None = None,
) -> bool:
    """Queue one delivery about ``person`` (if any) to one subscription (a workflow's "send webhook" action); False
    when the key was queued before, the subscription is gone or disabled, or it is for marketing and the person
    has not consented to it."""
    body = payload(event_type, datetime.now(UTC), data)
    status = await conn.execute(
        queries.ENQUEUE, subscription_id, msg_id("action", key), event_type, body, person
    )
    if status.endswith(" 0"):
        return False
    await conn.execute(queries.NOTIFY)
    return True


async def enqueue_many(
    conn: asyncpg.Connection,
    items: Sequence[tuple[int, str, Mapping[str, Any], str, uuid.UUID | None]],
) -> None:
    """:func:`enqueue` for many actions in one statement: (subscription, event type, data, key, person) each."""
    if not items:
        return
    now = datetime.now(UTC)
    await conn.execute(
        queries.ENQUEUE_MANY,
        [sid for sid, _, _, _, _ in items],
        [msg_id("action", key) for _, _, _, key, _ in items],
        [kind for _, kind, _, _, _ in items],
        [payload(kind, now, data) for _, kind, data, _, _ in items],
        [person for _, _, _, _, person in items],
    )
