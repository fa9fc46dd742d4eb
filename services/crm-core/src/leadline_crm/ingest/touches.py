"""What ingestion writes: enriched events as touchpoints, and what they change on their persons (facts, score,
visits, stage), in one PostgreSQL transaction per batch, idempotent by ``event_id``."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

import asyncpg
import orjson

from leadline_crm.automation import ingested
from leadline_crm.ingest import queries
from leadline_crm.ingest.touch import TOUCHPOINT_COLUMNS, PersonDelta, Touch
from leadline_crm.marketing import orders, rollups
from leadline_crm.people import consent
from leadline_crm.service import support
from leadline_crm.stages import Rule, apply_moves, load_scoring
from leadline_shared.events import EnrichedEvent


def _deltas(
    touches: Iterable[Touch], now: datetime, rules: list[Rule], half_life: float
) -> dict[str, PersonDelta]:
    by_type: dict[str, list[Rule]] = {}
    for rule in rules:
        by_type.setdefault(rule.event_type, []).append(rule)
    deltas: dict[str, PersonDelta] = {}
    for t in touches:
        delta = deltas.get(t.person_id)
        if delta is None:
            delta = deltas[t.person_id] = PersonDelta(t.person_id)
        delta.add(t, now, by_type, half_life)
    return deltas


async def write_batch(
    conn: asyncpg.Connection, events: list[EnrichedEvent], now: datetime | None = None
) -> int:
    """:func:`write_touches` for event objects."""
    return await write_touches(conn, [Touch.of(ev) for ev in events], now)


class Raced(Exception):
    """Another writer stored some of this batch's events meanwhile (a rebalance): the batch is rolled back and
    written again, so that only the events that are new count."""


async def write_touches(conn: asyncpg.Connection, touches: list[Touch], now: datetime | None = None) -> int:
    """Write events in one transaction; returns how many were new (redeliveries count zero).

    Only new touchpoints change the persons, so a replayed batch never adds score, visits or stage moves twice.
    The batch's already-stored event ids are looked up first; person facts are then upserted in one statement
    (persons before their touchpoints, as the foreign key wants), then the new touchpoints are streamed in with
    COPY. Should another consumer store one of them meanwhile, COPY fails on the unique key and the whole
    batch is rolled back and written again.
    """
    for _attempt in range(3):
        try:
            return await _write_touches(conn, touches, now or datetime.now(UTC))
        except (
            Raced,
            asyncpg.DeadlockDetectedError,
        ):  # a rebalance, or two shards meeting on a merged person
            continue
    raise Contended("events kept being written concurrently by another consumer")


class Contended(RuntimeError):
    """Another consumer kept writing the same events (a long rebalance): worth retrying, not a poison event."""


async def _write_touches(conn: asyncpg.Connection, touches: list[Touch], now: datetime) -> int:
    if not touches:
        return 0
    async with conn.transaction():
        touches, shown = await rollups.count_impressions(conn, touches)  # counted, never a touchpoint (§12)
        written = await _write_fresh(conn, touches, now) if touches else 0
        await rollups.add_impressions(conn, shown)  # last: its daily rows stay locked only until the commit
    return sum(shown.values()) + written


async def _write_fresh(conn: asyncpg.Connection, touches: list[Touch], now: datetime) -> int:
    """The batch's events that are not impressions, in the caller's transaction; how many were new."""
    merged = await conn.fetch(queries.MERGED_IDS, orjson.dumps(list({t.person_id for t in touches})).decode())
    if merged:
        survivors = {str(old): str(new) for old, new in merged}
        for t in touches:
            t.person_id = survivors.get(str(uuid.UUID(t.person_id)), t.person_id)
    unique = {t.event_id: t for t in reversed(touches)}  # the first of each id wins
    stored = await conn.fetch(queries.EXISTING_EVENTS, orjson.dumps(list(unique)).decode())
    for row in stored:
        del unique[row[0]]
    if not unique:
        return 0
    fresh = list(unique.values())[::-1]
    scoring, rules = await load_scoring(conn)
    deltas = _deltas(fresh, now, rules, scoring.half_life_days)
    updated = await conn.fetch(
        queries.UPSERT_PERSON_DELTAS,
        orjson.dumps([d.doc() for d in deltas.values()]).decode(),
        now,
        scoring.half_life_days,
    )
    try:  # binary COPY: asyncpg encodes the rows in C (as text lines built in Python: twice the client CPU)
        await conn.copy_records_to_table(
            "touchpoints", records=[t.row() for t in fresh], columns=TOUCHPOINT_COLUMNS
        )
    except asyncpg.UniqueViolationError:
        raise Raced from None
    await rollups.fold(conn, fresh)
    await apply_moves(  # only persons with an event that counts (not a bot's alone) may move
        conn,
        [
            dict(r) | {"cause": d.cause, "at": d.cause_at}
            for r in updated
            if (d := deltas[r["person_id"]]).cause
        ],
        scoring,
        now,
        "automatic",
    )
    await orders.record(conn, fresh, now)  # website purchases, after the moves the events made
    await ingested.from_batch(conn, fresh, updated, deltas)  # domain events for automation (issue 16)
    await consent.record(conn, fresh)  # the consent calls' and forms' statements (issue 14)
    await support.open_cases(conn, fresh)  # support forms' submissions open cases (issue 14)
    return len(fresh)
