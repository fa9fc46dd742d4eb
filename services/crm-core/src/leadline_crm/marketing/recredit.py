"""The e-mail and funnel credits computed outside ingestion's transaction (migration 0071).

Ingestion, merges, erasures and edits only queue the persons whose credits are due; :class:`Refolder` is a
periodic job of the automation loop (one leader per schema) that computes them, and :func:`catch_up` lets a report
that reads those credits fold whatever is still queued first, so what it shows equals the raw computation even a
moment after an event was stored. The SRE sees the backlog (``leadline_crm_marketing_recredit_queued``) and the
failed folds (``leadline_crm_marketing_recredit_failures_total``); docs/operations.md says what to do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Gauge

from leadline_crm.marketing import queries

log = logging.getLogger(__name__)

TRANSIENT = (asyncpg.PostgresConnectionError, asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
"""Failures that say nothing about the credits: they end the automation loop's pass, which retries it."""


@dataclass
class Refolder:
    """The automation loop's job that folds the queue, with its metrics in ``registry``."""

    registry: CollectorRegistry
    queued: Gauge = field(init=False)
    failures: Counter = field(init=False)

    def __post_init__(self) -> None:
        self.queued = Gauge(
            "leadline_crm_marketing_recredit_queued",
            "Rows of persons whose marketing credits are still to be computed, after the last fold",
            registry=self.registry,
        )
        self.failures = Counter(
            "leadline_crm_marketing_recredit_failures",
            "Folds of the marketing credit queue that failed for a reason of their own (rolled back, retried)",
            ["error"],
            registry=self.registry,
        )

    async def __call__(self, conn: asyncpg.Connection) -> int:
        """Compute the queued persons' credits anew, unless another fold is at it; returns how many persons.

        A fold that fails for a reason of its own (not an unreachable database) is rolled back to a savepoint,
        counted and logged, and the persons stay queued: the automation loop that runs this job goes on with its
        other work instead of stopping on a credit it cannot compute, and the next pass tries again."""
        done = 0
        try:
            async with conn.transaction():
                done = await conn.fetchval(queries.REFOLD, False)
        except TRANSIENT:
            raise
        except asyncpg.PostgresError as exc:
            self.failures.labels(error=type(exc).__name__).inc()
            log.error(
                "marketing credits could not be computed; the persons stay queued",
                extra={"error": type(exc).__name__},
            )
        self.queued.set(await conn.fetchval(queries.QUEUED))
        return done


async def catch_up(conn: asyncpg.Connection) -> None:
    """Wait for a fold under way, then fold what is still queued (nothing when the queue is empty)."""
    await conn.fetchval(queries.REFOLD, True)
