"""The retry schedule: exponential backoff with full jitter, never beyond each step's base, and a delivery is
given up only after the whole schedule and at least 24 hours."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from leadline_crm.webhooks import schedule

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_each_wait_is_drawn_between_one_second_and_its_base() -> None:
    rng = random.Random(7)
    for attempts, base in enumerate(schedule.BASES, 1):
        waits = [schedule.next_attempt(attempts, T0, T0, rng) for _ in range(200)]
        seconds = [(w - T0).total_seconds() for w in waits if w is not None]
        assert len(seconds) == 200
        assert min(seconds) >= 1.0
        assert max(seconds) <= base.total_seconds()
        if base.total_seconds() > 10:  # full jitter: the draws spread over the whole range
            assert max(seconds) - min(seconds) > base.total_seconds() / 2


def test_the_bases_grow_to_a_day() -> None:
    bases = [b.total_seconds() for b in schedule.BASES]
    assert bases == sorted(bases)
    assert bases[0] == 5
    assert schedule.BASES[-1] == timedelta(days=1)
    assert sum(bases) > 24 * 3600


def test_dead_only_after_the_schedule_and_a_day() -> None:
    rng = random.Random(1)
    n = len(schedule.BASES)
    assert schedule.next_attempt(n, T0, T0 + timedelta(hours=23), rng) is not None  # not a day yet
    assert schedule.next_attempt(n - 1, T0, T0 + timedelta(hours=30), rng) is not None  # schedule not done
    assert schedule.next_attempt(n, T0, T0 + timedelta(hours=24), rng) is None
    later = schedule.next_attempt(n + 3, T0, T0 + timedelta(hours=2), rng)
    assert later is not None
    assert later - (T0 + timedelta(hours=2)) <= timedelta(days=1)  # the last base repeats
