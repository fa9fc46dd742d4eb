"""Identity conflicts for reps to review, kept from the identity graph's ``conflict`` changes (issue 12).

The graph decides what a conflict is (architecture.md §4): an event carried identifiers of two persons that
each hold an email (or a user id), so it would not merge them. It announces every such event on
identity.changes.v1; crm-core keeps one open row per pair of persons with the identifier's type, how often and
when it was seen and the last event's id (no identifier's value, so an erasure leaves nothing personal here).
Ingesting events costs nothing: the conflicts come with the identity changes crm-core reads anyway.

A merge moves the merged persons' open conflicts to the survivor and resolves those between the merged persons
(a rep's confirmed merge among them); an erasure resolves the erased person's. Persons are followed through
``person_merges``, so a conflict announced after one of its persons was merged away lands on the survivor.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from leadline_shared.events import IdentityChange

# $1, $2: the persons (followed to their survivors); $3: identifier type; $4: event id; $5: when.
RECORD = """
WITH m AS (
    SELECT coalesce((SELECT person_id FROM person_merges WHERE old_id = $1), $1) AS x,
           coalesce((SELECT person_id FROM person_merges WHERE old_id = $2), $2) AS y
)
INSERT INTO identity_conflicts AS c (person_a, person_b, identifier_type, event_id, first_seen, last_seen)
SELECT least(x, y), greatest(x, y), $3, $4, $5, $5 FROM m
 WHERE x <> y AND NOT EXISTS (SELECT 1 FROM persons WHERE person_id IN (x, y) AND erased_at IS NOT NULL)
ON CONFLICT (person_a, person_b) WHERE resolved_at IS NULL DO UPDATE
   SET seen = c.seen + 1,
       event_id = CASE WHEN EXCLUDED.last_seen >= c.last_seen THEN EXCLUDED.event_id ELSE c.event_id END,
       identifier_type = CASE WHEN EXCLUDED.last_seen >= c.last_seen THEN EXCLUDED.identifier_type
                              ELSE c.identifier_type END,
       first_seen = least(c.first_seen, EXCLUDED.first_seen),
       last_seen = greatest(c.last_seen, EXCLUDED.last_seen)
"""

# $1: survivor; $2: merged persons; $3: change id; $4: when. First the conflicts among them are resolved ...
RESOLVE_MERGED = """
UPDATE identity_conflicts SET resolved_at = $4, resolution = 'merged', change_id = $3
 WHERE resolved_at IS NULL AND person_a = ANY($2::uuid[] || $1::uuid) AND person_b = ANY($2::uuid[] || $1::uuid)
"""

# ... then the merged persons' conflicts with anyone else become the survivor's (added up per pair).
MOVE_TO_SURVIVOR = """
WITH moved AS (
    DELETE FROM identity_conflicts
     WHERE resolved_at IS NULL AND (person_a = ANY($2::uuid[]) OR person_b = ANY($2::uuid[]))
    RETURNING *
), r AS (
    SELECT CASE WHEN person_a = ANY($2::uuid[]) THEN $1::uuid ELSE person_a END AS a,
           CASE WHEN person_b = ANY($2::uuid[]) THEN $1::uuid ELSE person_b END AS b,
           identifier_type, event_id, seen, first_seen, last_seen
      FROM moved
)
INSERT INTO identity_conflicts AS c (person_a, person_b, identifier_type, event_id, seen, first_seen, last_seen)
SELECT least(a, b), greatest(a, b), (array_agg(identifier_type ORDER BY last_seen DESC))[1],
       (array_agg(event_id ORDER BY last_seen DESC))[1], sum(seen), min(first_seen), max(last_seen)
  FROM r GROUP BY least(a, b), greatest(a, b)
ON CONFLICT (person_a, person_b) WHERE resolved_at IS NULL DO UPDATE
   SET seen = c.seen + EXCLUDED.seen,
       event_id = CASE WHEN EXCLUDED.last_seen >= c.last_seen THEN EXCLUDED.event_id ELSE c.event_id END,
       identifier_type = CASE WHEN EXCLUDED.last_seen >= c.last_seen THEN EXCLUDED.identifier_type
                              ELSE c.identifier_type END,
       first_seen = least(c.first_seen, EXCLUDED.first_seen),
       last_seen = greatest(c.last_seen, EXCLUDED.last_seen)
"""

# A merge the graph made on a rep's request ($3): the request is done.
REQUEST_DONE = "UPDATE merge_requests SET change_id = $1, merged_at = $2 WHERE request_id = $3"

RESOLVE_ERASED = """
UPDATE identity_conflicts SET resolved_at = $3, resolution = 'erased', change_id = $2
 WHERE resolved_at IS NULL AND (person_a = $1 OR person_b = $1)
"""


def _when(change: IdentityChange, fallback: datetime) -> datetime:
    try:
        return datetime.fromisoformat(change.at.replace("Z", "+00:00"))
    except ValueError:
        return fallback


async def record(conn: asyncpg.Connection, change: IdentityChange, person: uuid.UUID, now: datetime) -> None:
    """A ``conflict`` change: one more sighting of the pair's conflict (a new open one for a new pair)."""
    try:
        other = uuid.UUID(change.other or "")
    except ValueError:
        return
    kind = (change.identifier or {}).get("type") or "unknown"
    await conn.execute(
        RECORD, person, other, kind[:40], (change.event_id or change.change_id)[:200], _when(change, now)
    )


async def after_merge(
    conn: asyncpg.Connection,
    change: IdentityChange,
    survivor: uuid.UUID,
    olds: list[uuid.UUID],
    now: datetime,
) -> None:
    """After a merge was folded in: conflicts among the merged persons are resolved, the others move to the
    survivor, and a rep's request (the change's ``event_id``) is marked done."""
    await conn.execute(RESOLVE_MERGED, survivor, olds, change.change_id, now)
    await conn.execute(MOVE_TO_SURVIVOR, survivor, olds)
    if change.event_id:
        await conn.execute(REQUEST_DONE, change.change_id, now, change.event_id)


async def after_erase(
    conn: asyncpg.Connection, change: IdentityChange, person: uuid.UUID, now: datetime
) -> None:
    """An erased person's conflicts are closed: nobody can merge with an erased person."""
    await conn.execute(RESOLVE_ERASED, person, change.change_id, now)
