"""The domain events of an ingest batch, written in the batch's own transaction with one statement.

Ingestion runs at some 20,000 events a second, so it never writes an event per page view: it hands over the
batch's candidates — new persons, score changes (with the old and new score: the new one minus the batch's
points, the old one having decayed to exactly that), form submissions, custom track events — and the statement
keeps only those somebody listens to (a type an enabled rule triggers on or an enabled webhook subscription asks
for) and that say something: a person created in this very transaction (``created_at = now()``), a custom event
whose name an enabled rule waits for. With nobody listening, ingestion writes no event rows at all. Only events new to crm-core reach here (a replayed Kafka batch finds
its touchpoints stored and writes nothing), and ``UNIQUE (type, source_key)`` absorbs the rest.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson

from leadline_crm.automation import queries
from leadline_crm.automation.events import NewEvent, emit

if TYPE_CHECKING:
    from leadline_crm.ingest.touch import PersonDelta, Touch


def _candidates(
    touches: Iterable[Touch], updated: Iterable[Mapping[str, Any]], deltas: Mapping[str, PersonDelta]
) -> list[tuple[str, str, str | None, bytes, str]]:
    out: list[tuple[str, str, str | None, bytes, str]] = []
    for row in updated:
        pid = row["person_id"]
        out.append(("person.created", pid, None, b"{}", f"person:{pid}"))
        delta = deltas.get(pid)
        if delta is not None and delta.points and delta.cause:
            new = round(float(row["score"]), 2)
            doc = {"old": round(new - delta.points, 2), "new": new}
            out.append(("score.changed", pid, None, orjson.dumps(doc), delta.cause))
    for t in touches:
        if t.automated or t.type not in ("form_submit", "track"):
            continue
        if t.type == "form_submit":
            form = t.doc.get("form")
            key = form.get("key") if isinstance(form, dict) else None
            key = key if isinstance(key, str) else None
            out.append(("form.submitted", t.person_id, key, orjson.dumps({"form": key}), t.event_id))
        else:
            props = t.doc.get("properties")
            name = props.get("event") if isinstance(props, dict) else None
            if isinstance(name, str) and name:
                out.append(
                    ("event.custom", t.person_id, name[:200], orjson.dumps({"name": name[:200]}), t.event_id)
                )
    return out


async def from_batch(
    conn: asyncpg.Connection,
    touches: Sequence[Touch],
    updated: Sequence[Mapping[str, Any]],
    deltas: Mapping[str, PersonDelta],
) -> None:
    """Write the batch's domain events (one statement; call in the batch's transaction, after the persons)."""
    found = _candidates(touches, updated, deltas)
    if found:
        await conn.execute(queries.EMIT_INGESTED, *(list(c) for c in zip(*found, strict=True)))


async def purchases(conn: asyncpg.Connection, orders: Iterable[tuple[uuid.UUID | str, str]]) -> None:
    """``purchase.created`` for each (person, causing event id) whose order was stored."""
    await emit(
        conn,
        [NewEvent("purchase.created", cause, person, None, {"event_id": cause}) for person, cause in orders],
    )
