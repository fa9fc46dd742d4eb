"""Stage moves and scoring settings in PostgreSQL: shared by ingestion, identity changes and the API."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from leadline_crm import lifecycle, queries
from leadline_crm.automation import events as domain_events
from leadline_crm.sales import assignment


@dataclass
class Rule:
    """A score rule: points for events of ``event_type`` (whose URL contains ``url_contains``, when set)."""

    event_type: str
    url_contains: str | None
    points: float

    def matches(self, url: str | None) -> bool:
        """Whether an event of this rule's type at ``url`` earns its points."""
        return self.url_contains is None or self.url_contains in (url or "")


async def load_scoring(conn: asyncpg.Connection) -> tuple[lifecycle.Scoring, list[Rule]]:
    """The admin's scoring settings and active rules (two tiny reads per batch, so edits apply at once)."""
    row = await conn.fetchrow(queries.SCORING)
    scoring = lifecycle.Scoring(*row) if row else lifecycle.Scoring()
    rules = [Rule(*r) for r in await conn.fetch(queries.ACTIVE_RULES)]
    return scoring, rules


MAX_BACKDATE = timedelta(days=365)


def event_time(occurred: datetime, received: datetime, now: datetime) -> datetime:
    """When a move an event caused happened: the event's own time (a backfill, a batch that waited in Kafka keep
    their days), but never after the event was received or after ``now`` (a client's clock ahead), and never more
    than ``MAX_BACKDATE`` before it was received (a client's clock years behind)."""
    latest = min(received, now)
    return min(max(occurred, received - MAX_BACKDATE), latest)


async def apply_moves(
    conn: asyncpg.Connection,
    rows: Iterable[Mapping[str, Any]],
    scoring: lifecycle.Scoring,
    now: datetime,
    reason: str,
    cause_user: str | None = None,
) -> int:
    """Move persons forward where their signals say so, logging each transition with its cause and its time (a
    row's ``at``, else ``now``)."""
    moves = []
    for row in rows:
        signals = lifecycle.Signals(
            identified=row["identified"],
            score=row["score"],
            clicked=row["clicked"],
            rep_contacted=row["rep_contacted"],
            visit_days=row["visit_days"],
            purchases=row["purchases"],
        )
        target = lifecycle.automatic_move(row["stage"], signals, scoring)
        if target is not None:
            moves.append(
                (
                    row["person_id"],
                    row["stage"],
                    target,
                    row["cause"],
                    cause_user,
                    reason,
                    row.get("at") or now,
                )
            )
    if moves:
        columns = list(map(list, zip(*moves, strict=True)))
        await conn.execute(queries.MOVE_STAGES, *columns[:6], now, columns[6])
        await domain_events.stage_changes(conn, [m[:4] for m in moves])
        await assignment.new_leads(conn, [m[0] for m in moves if m[1] == "anonymous"], None)
    return len(moves)


async def reconsider(
    conn: asyncpg.Connection,
    person: uuid.UUID,
    cause: str,
    scoring: lifecycle.Scoring,
    now: datetime,
    reason: str,
    cause_user: str | None = None,
) -> int:
    """Move one person forward as their signals say now (after a rep's record, a merge or a link)."""
    rows = await conn.fetch(queries.SIGNALS, [person])
    return await apply_moves(
        conn, [dict(r) | {"cause": cause} for r in rows], scoring, now, reason, cause_user
    )
