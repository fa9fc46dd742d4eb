"""When a failed delivery is tried again: exponential backoff with full jitter, for at least a day.

The base delays grow from seconds to a day (:data:`BASES`); each wait is drawn uniformly between one second and
its base ("full jitter"), so receivers coming back from an outage are not hit by every sender at the same instant.
A delivery is given up ('dead') only once it has had every step of the schedule *and* a day has passed since it
was queued, so even unlucky short draws keep a receiver's outage of up to 24 hours from losing anything; after the
schedule runs out, the last base (a day) repeats until then.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

BASES = tuple(
    timedelta(seconds=s) for s in (5, 30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 24 * 3600)
)
RETRY_FOR = timedelta(hours=24)


def next_attempt(attempts: int, queued_at: datetime, now: datetime, rng: random.Random) -> datetime | None:
    """When to try again after the ``attempts``-th attempt failed at ``now``; None once the delivery is dead."""
    if attempts >= len(BASES) and now - queued_at >= RETRY_FOR:
        return None
    base = BASES[min(attempts, len(BASES)) - 1] if attempts >= 1 else BASES[0]
    seconds = rng.uniform(1.0, max(1.0, base.total_seconds()))
    return now + timedelta(seconds=seconds)
