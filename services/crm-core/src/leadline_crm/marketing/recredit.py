"""The e-mail and funnel credits computed anew outside ingestion's transaction (migration 0071).

Ingestion, merges, erasures and edits only queue the persons whose credits are due; :func:`refold` is a periodic
job of the automation loop (one leader per schema) that computes them, and :func:`catch_up` lets a report that
reads those credits fold whatever is still queued first, so what it shows equals the raw computation even a moment
after an event was stored.
"""

from __future__ import annotations

import logging

import asyncpg

from leadline_crm.marketing import queries

log = logging.getLogger(__name__)


async def refold(conn: asyncpg.Connection) -> int:
    """Compute the queued persons' credits anew, unless another fold is at it; returns how many persons.

    A fold that fails for a reason of its own (not an unreachable database) is rolled back to a savepoint and
    logged, and the persons stay queued: the automation loop that runs this job goes on with its other work
    instead of stopping on a credit it cannot compute, and the next pass tries again."""
    try:
        async with conn.transaction():
            done: int = await conn.fetchval(queries.REFOLD, False)
            return done
    except (asyncpg.PostgresConnectionError, asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
        raise
    except asyncpg.PostgresError as exc:
        log.error(
            "marketing credits could not be computed; the persons stay queued",
            extra={"error": type(exc).__name__},
        )
        return 0


async def catch_up(conn: asyncpg.Connection) -> None:
    """Wait for a fold under way, then fold what is still queued (nothing when the queue is empty)."""
    await conn.fetchval(queries.REFOLD, True)
