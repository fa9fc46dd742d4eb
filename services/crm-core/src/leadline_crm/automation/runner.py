"""The automation loop: hands committed domain events to its handlers and deletes them, in one transaction.

Taking a batch (``FOR UPDATE SKIP LOCKED``, in id order), running every handler of the explicit list it was built
with (the workflow rules, the outbound webhooks) and deleting the rows commit together or not at all: a crash
mid-batch leaves the events to be handled again by the next leader, and what the handlers wrote went with the
rolled-back transaction — exactly once in effect across restarts and replicas. Each pass also runs the periodic
jobs it was given (delayed rule runs that are due, cases that breached their service level).

One leader per schema, as the outbox relay (:mod:`leadline_crm.leader`: a PostgreSQL advisory lock held by the
loop's connection): the other replicas stand by and take over when the leader's session ends. It wakes on the NOTIFY :func:`events.emit` sends
at commit, and looks every ``poll_seconds`` for due runs and missed notifications.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import asyncpg

from leadline_crm import leader
from leadline_crm.automation import queries
from leadline_crm.automation.events import Handler, NewEvent, emit, from_row

log = logging.getLogger(__name__)

TRANSIENT = (
    asyncpg.PostgresConnectionError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    ConnectionError,
    OSError,
)
"""Failures that say nothing about the events: the pass ends and the loop tries it again."""
EVENT_FAILURES = (asyncpg.PostgresError, ValueError, KeyError, TypeError)
"""Failures an event may cause (a value a handler cannot take): such an event is set aside, not retried forever."""

Job = Callable[[asyncpg.Connection], Awaitable[int]]
"""A periodic job of the loop, in its own transaction; returns how much it did."""


async def breaches(conn: asyncpg.Connection, limit: int = 500) -> int:
    """Announce the cases that passed their due time unresolved, once each (``case.breached``)."""
    rows = await conn.fetch(queries.BREACHES, limit)
    await emit(
        conn,
        [
            NewEvent(
                "case.breached",
                f"case:{r['id']}:breached",
                r["person_id"],
                r["tracking_number"],
                {"case_id": str(r["id"]), "case_type": r["type"], "status": r["status"],
                 "assignee_id": str(r["assignee_id"]) if r["assignee_id"] else None,
                 "due_at": r["due_at"].isoformat()},
            )
            for r in rows
        ],
    )  # fmt: skip
    return len(rows)


@dataclass
class Runner:
    """Runs the automation while this replica holds the schema's automation lock; stands by otherwise."""

    pool: asyncpg.Pool
    handlers: Sequence[Handler]
    jobs: Sequence[Job] = ()
    batch_size: int = 1000
    poll_seconds: float = 1.0
    standby_seconds: float = 5.0
    retry_seconds: float = 1.0
    max_retry_seconds: float = 30.0
    state: leader.State = "starting"
    handled: int = field(default=0)

    async def run(self) -> None:
        """Lead when the lock is free, else stand by; back off and retry after a failure (logged)."""
        backoff = leader.Backoff(self.retry_seconds, self.max_retry_seconds, self.standby_seconds)
        await leader.keep(self._term, "automation loop", self._set_state, backoff)

    def _set_state(self, state: leader.State) -> None:
        self.state = state

    async def _term(self) -> bool:
        async with leader.term(self.pool, "automation") as term:
            if term is None:
                return False
            self.state = "leading"
            while True:
                term.wake.clear()
                if await self.step(term.conn):
                    continue
                await leader.woken(term.wake, self.poll_seconds)

    async def step(self, conn: asyncpg.Connection) -> int:
        """One pass: a batch of events through every handler, then each job; returns how much was done.

        A batch a handler fails on is handled again one event at a time; an event that fails alone is set aside in
        ``domain_events_dead`` (logged with its id, type and the error's name), so one bad event cannot stop the
        automation. A failure to reach PostgreSQL ends the pass instead (the loop retries it)."""
        try:
            done = await self._batch(conn, self.batch_size)
        except TRANSIENT:
            raise
        except EVENT_FAILURES as exc:
            log.warning(
                "automation batch failed; handling it one event at a time",
                extra={"error": type(exc).__name__},
            )
            done = await self._one_by_one(conn)
        for job in self.jobs:
            async with conn.transaction():
                done += await job(conn)
        return done

    async def _batch(self, conn: asyncpg.Connection, size: int) -> int:
        async with conn.transaction():
            rows = await conn.fetch(queries.TAKE_EVENTS, size)  # deleted, unless this transaction rolls back
            if rows:
                events = sorted((from_row(r) for r in rows), key=lambda e: e.id)
                for handler in self.handlers:
                    await handler(conn, events)
        self.handled += len(rows)
        return len(rows)

    async def _one_by_one(self, conn: asyncpg.Connection) -> int:
        """The failed batch again, one event per transaction; the one that fails alone goes to the dead table."""
        done = 0
        for _ in range(self.batch_size):
            try:
                handled = await self._batch(conn, 1)
            except TRANSIENT:
                raise
            except EVENT_FAILURES as exc:
                async with conn.transaction():
                    row = await conn.fetchrow(queries.BURY_EVENT, type(exc).__name__)
                if row is not None:
                    log.error("a domain event kept failing; moved to domain_events_dead",
                              extra={"event_id": row["id"], "event_type": row["type"], "error": type(exc).__name__})  # fmt: skip
                handled = 1
            if not handled:
                break
            done += handled
        return done
