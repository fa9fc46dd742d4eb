"""Identity changes from the enricher (identity.changes.v1): merges, links, unlinks, erasures and conflicts.

An unlink only confirms what a rep did here (took an email or phone off a person), so it is recorded and
nothing else changes.

A merge re-points the merged persons' history (touchpoints, activities, purchases, feedback, email sends, stage
log) to the survivor, folds their facts into it, recomputes score, visits and stage from the history, and
remembers old → survivor so that late events still carrying an old id land on the survivor. Each change is
applied once: its ``change_id`` is recorded in the same transaction.

A merged person may be a lead a rep entered (persons.py announces it with its ``crm_contact_id``) whose email the
graph already gave someone crm-core had not heard of yet: its record, stage moves and activities move to that
survivor, and its facts fill what the survivor lacks, so the rep's entry is kept, not lost; its id then answers
404 naming the survivor. A value another person of crm-core already holds is not announced (a rep's forced
duplicate, persons.unshared), so such a lead stays a person of its own.

A conflict (two persons the graph would not merge, seen together) is kept for reps to review
(ingest/conflicts.py); merges and erasures resolve or move the conflicts of the persons they touch.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg

from leadline_crm import lifecycle
from leadline_crm.http import audit
from leadline_crm.ingest import conflicts, queries
from leadline_crm.stages import load_scoring, reconsider
from leadline_shared.events import IdentityChange
from leadline_shared.identifiers import canonical_email


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def recompute(
    conn: asyncpg.Connection,
    person_id: uuid.UUID,
    scoring: lifecycle.Scoring,
    now: datetime,
    cause: str,
    reason: str,
) -> None:
    """Recompute a person's score, visits and purchases from their history, then move the stage forward."""
    await conn.execute(queries.RECOMPUTE_PERSON, person_id, now, scoring.half_life_days)
    await reconsider(conn, person_id, cause, scoring, now, reason)


async def _merge(
    conn: asyncpg.Connection, change: IdentityChange, survivor: uuid.UUID, now: datetime
) -> None:
    olds = [u for u in map(_uuid, change.merged) if u is not None and u != survivor]
    await conn.execute(queries.ENSURE_PERSON, survivor, now)
    if not olds:
        return
    for statement in queries.REPOINT:
        await conn.execute(statement, survivor, olds)
    await conn.execute(queries.FOLD_PERSONS, survivor, olds)
    await conn.execute(queries.DROP_MERGED, olds, survivor)
    await conn.execute(queries.RECORD_MERGES, survivor, olds, change.change_id)
    await conflicts.after_merge(conn, change, survivor, olds, now)
    scoring, _ = await load_scoring(conn)
    await recompute(conn, survivor, scoring, now, change.change_id, "identity merge")


async def _link(conn: asyncpg.Connection, change: IdentityChange, person: uuid.UUID, now: datetime) -> None:
    ident = change.identifier or {}
    kind, value = ident.get("type"), ident.get("value")
    await conn.execute(queries.ENSURE_PERSON, person, now)
    # Changes no longer carry the value (identity.changes.v1 is kept forever; the enriched event that linked it
    # brings it to the person). Old changes in the topic still may: record those as before.
    if isinstance(kind, str) and isinstance(value, str) and value:
        if kind == "email":
            value = canonical_email(value) or value.strip().lower()
        await conn.execute(queries.LINK_IDENTIFIER, person, kind, value[:320])
    scoring, _ = await load_scoring(conn)
    await reconsider(conn, person, change.change_id, scoring, now, "identity link")


async def apply_changes(
    conn: asyncpg.Connection, changes: list[IdentityChange], now: datetime | None = None
) -> int:
    """Apply changes in order in one transaction; returns how many were new (replays are skipped)."""
    now = now or datetime.now(UTC)
    applied = 0
    async with conn.transaction():
        for change in changes:
            person = _uuid(change.person_id)
            if person is None:
                continue
            if await conn.fetchval(queries.CLAIM_CHANGE, change.change_id, change.kind, person) is None:
                continue
            applied += 1
            if change.kind == "merge":
                await _merge(conn, change, person, now)
            elif change.kind == "link":
                await _link(conn, change, person, now)
            # "unlink" follows a change crm-core made itself (a rep took the value off the person): nothing to do
            elif change.kind == "erase":
                await conn.execute(queries.ERASE_PERSON, person, now)
                for statement in queries.SCRUB_HISTORY:
                    await conn.execute(statement, person)
                await audit.forget(conn, person)
                await conflicts.after_erase(conn, change, person, now)
            elif change.kind == "conflict":
                await conflicts.record(conn, change, person, now)
    return applied
