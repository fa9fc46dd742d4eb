"""Domain events: what changed in crm-core, written in the transaction that made the change (a transactional inbox).

Ingestion and the API call :func:`emit` on the connection of their own transaction, so an event exists exactly
when its change committed. Each carries a ``source_key`` naming its cause (the Kafka ``event_id``, or e.g.
``deal:<id>:stage:<stage id>``); ``UNIQUE (type, source_key)`` and ``ON CONFLICT DO NOTHING`` make a replayed
Kafka batch insert nothing new. The automation loop (runner.py) reads the rows in id order, hands them to its
handlers (the workflow rules, the outbound webhooks) and deletes them in one transaction.

``data`` holds ids and the changed fields only: the row is a pointer to a change, not a copy of a person.
``chain`` lists the rules whose actions caused the event, so a rule never runs on its own effects.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from leadline_crm.automation import queries

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


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """One committed change, as the automation loop hands it to its handlers."""

    id: int
    type: str  # one of EVENT_TYPES
    person_id: uuid.UUID | None
    subject: str | None
    data: Mapping[str, Any]
    source_key: str
    occurred_at: datetime
    chain: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to write; the id and time are given by PostgreSQL."""

    type: str
    source_key: str
    person_id: uuid.UUID | str | None = None
    subject: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    chain: tuple[int, ...] = ()


Handler = Callable[[asyncpg.Connection, Sequence[DomainEvent]], Awaitable[None]]
"""Called by the loop with a batch of events, inside the transaction that deletes them."""


async def emit(conn: asyncpg.Connection, events: Sequence[NewEvent]) -> None:
    """Write ``events`` (one multi-row INSERT); call inside the transaction that makes the change they announce."""
    if not events:
        return
    await conn.execute(
        queries.EMIT,
        [e.type for e in events],
        [str(e.person_id) if e.person_id is not None else None for e in events],
        [e.subject for e in events],
        [json.dumps(e.data, default=str, separators=(",", ":")) for e in events],
        [e.source_key for e in events],
        [",".join(map(str, e.chain)) for e in events],
    )


async def emit_listened(conn: asyncpg.Connection, events: Sequence[NewEvent]) -> None:
    """:func:`emit` for bulk writers (a CSV import's chunk): only the events of a type an enabled rule or webhook
    subscription listens to, as ingestion does, so that 100,000 imported rows nobody listens to write no events
    (one small read per call instead)."""
    if not events:
        return
    wanted = {r[0] for r in await conn.fetch(queries.LISTENED_TYPES)}
    await emit(conn, [e for e in events if e.type in wanted])


def from_row(row: Mapping[str, Any]) -> DomainEvent:
    """A ``domain_events`` row as a :class:`DomainEvent`."""
    data = row["data"]
    return DomainEvent(
        id=row["id"],
        type=row["type"],
        person_id=row["person_id"],
        subject=row["subject"],
        data=json.loads(data) if isinstance(data, str) else data,
        source_key=row["source_key"],
        occurred_at=row["occurred_at"],
        chain=tuple(row["chain"] or ()),
    )


async def stage_changes(
    conn: asyncpg.Connection, moves: Sequence[tuple[uuid.UUID | str, str | None, str, str | None]]
) -> None:
    """``person.stage_changed`` for each (person, from, to, cause): the cause is the event id or the change's
    own key, so a replay of the same cause announces the move once."""
    await emit(
        conn,
        [
            NewEvent(
                "person.stage_changed",
                f"{cause or 'move'}:{person}:{to}",
                person,
                None,
                {"from": old, "to": to},
            )
            for person, old, to, cause in moves
        ],
    )


def _once() -> str:
    """A key part for a change made once through the API (never replayed: each call is its own cause)."""
    return uuid.uuid4().hex


async def case_changed(
    conn: asyncpg.Connection, kind: str, case: Mapping[str, Any], changed: Mapping[str, Any] | None = None
) -> None:
    """``case.created`` or ``case.updated`` for a case row (ids, type, status, assignee and what changed)."""
    key = f"case:{case['id']}:created" if kind == "case.created" else f"case:{case['id']}:{_once()}"
    data = {"case_id": str(case["id"]), "case_type": case.get("type"), "status": case.get("status"),
            "priority": case.get("priority"),
            "assignee_id": str(case["assignee_id"]) if case.get("assignee_id") else None, **(changed or {})}  # fmt: skip
    await emit(conn, [NewEvent(kind, key, case.get("person_id"), case.get("tracking_number"), data)])


async def deal_moved(
    conn: asyncpg.Connection, deal: Mapping[str, Any], stage: Mapping[str, Any], from_stage: str | None
) -> None:
    """``deal.stage_changed`` for a deal moved to ``stage`` (a pipeline_stages row), and ``deal.won`` when it is a
    won stage."""
    key = f"deal:{deal['id']}:stage:{stage['id']}:{_once()}"
    data = {"deal_id": str(deal["id"]), "stage": stage["name"], "from": from_stage, "kind": stage["kind"],
            "amount": str(deal.get("amount")), "currency": deal.get("currency")}  # fmt: skip
    found = [NewEvent("deal.stage_changed", key, deal.get("person_id"), str(deal["id"]), data)]
    if stage["kind"] == "won":
        found.append(NewEvent("deal.won", key, deal.get("person_id"), str(deal["id"]), data))
    await emit(conn, found)


async def lead_assigned(conn: asyncpg.Connection, person: uuid.UUID | str, owner: uuid.UUID | str) -> None:
    """``lead.assigned``: a person was given an owner."""
    await emit(
        conn,
        [NewEvent("lead.assigned", f"assign:{person}:{_once()}", person, None, {"owner_id": str(owner)})],
    )
