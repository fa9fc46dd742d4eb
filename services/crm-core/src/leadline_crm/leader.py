"""One leader per schema for crm-core's background loops (the outbox relay, the automation loop, the webhook
dispatcher), so every replica can run them and exactly one does.

A loop leads while its pooled connection holds a PostgreSQL session advisory lock named after the loop and the
schema; the lock goes with the session, so a replica that dies or loses its connection hands over at once, and
the standbys (which try again every few seconds) take over. The leader LISTENs on the loop's channel, which the
writers NOTIFY at commit, so it wakes as soon as there is work; each loop also polls in case a notification was
missed.

:func:`term` is one term of office (the lock, the listener, and letting go of both); :func:`keep` runs terms for
ever, standing by while another replica leads and backing off after a failure, which it logs and outlives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import asyncpg

log = logging.getLogger(__name__)

State = Literal["starting", "leading", "standby", "failing"]

# The lock's and channel's names are 'leadline.<loop>.<schema>' and '<loop>_<schema>', as the loops used before
# this module, so replicas of both versions keep sharing one lock during a rolling upgrade.
LEAD = "SELECT pg_try_advisory_lock(hashtext('leadline.' || $1::text || '.' || current_schema()))"
RESIGN = "SELECT pg_advisory_unlock(hashtext('leadline.' || $1::text || '.' || current_schema()))"
CHANNEL = "SELECT left($1::text || '_' || current_schema(), 63)"


@dataclass(frozen=True, slots=True)
class Term:
    """A term as leader: the connection holding the lock, and the event a NOTIFY on the loop's channel sets."""

    conn: asyncpg.Connection
    wake: asyncio.Event


@contextlib.asynccontextmanager
async def term(pool: asyncpg.Pool, loop: str) -> AsyncIterator[Term | None]:
    """Lead ``loop`` for this schema while the block runs; None (at once) when another session leads."""
    async with pool.acquire() as conn:
        if not await conn.fetchval(LEAD, loop):
            yield None
            return
        wake = asyncio.Event()

        def notified(*_: object) -> None:
            wake.set()

        channel = await conn.fetchval(CHANNEL, loop)
        await conn.add_listener(channel, notified)
        try:
            yield Term(conn, wake)
        finally:
            if not conn.is_closed():
                with contextlib.suppress(Exception):  # the pool resets the session anyway
                    await conn.remove_listener(channel, notified)
                    await conn.fetchval(RESIGN, loop)


async def woken(wake: asyncio.Event, seconds: float) -> None:
    """Wait until ``wake`` is set or ``seconds`` have passed. ``asyncio.timeout``, not ``wait_for``: in Python 3.11
    ``wait_for`` can swallow a cancellation that arrives just as the event is set, and the loop would then outlive
    the shutdown that cancelled it (the webhook dispatcher's short paced waits made that happen in the tests)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await wake.wait()


@dataclass(frozen=True, slots=True)
class Backoff:
    """How a loop waits: after a failure (doubling from ``first`` to ``most``), and as a standby."""

    first: float = 1.0
    most: float = 30.0
    standby: float = 5.0


async def keep(
    run_term: Callable[[], Awaitable[bool]],
    what: str,
    set_state: Callable[[State], None],
    backoff: Backoff,
    on_failure: Callable[[Exception], Awaitable[None]] | None = None,
) -> None:
    """Run ``run_term`` (True when it led, False when another replica leads) until cancelled: stand by between
    terms another replica holds, and back off after a failure, which is logged (its class and message, never a
    row) and handed to ``on_failure``."""
    delay = backoff.first
    while True:
        try:
            led = await run_term()
        except Exception as exc:  # the loop must outlive any one failure
            set_state("failing")
            log.warning(f"{what} failed, retrying",
                        extra={"error": f"{type(exc).__name__}: {exc}", "retry_in_s": delay})  # fmt: skip
            if on_failure is not None:
                await on_failure(exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, backoff.most)
            continue
        delay = backoff.first
        if not led:
            set_state("standby")
            await asyncio.sleep(backoff.standby)
