"""How many deliveries each subscription may be sent now: its rate limit and its share of the dispatcher.

Two limits keep one receiver from starving the others. A hot subscription (a backlog of thousands) is held to its
``rate_limit`` deliveries a second by a token bucket that holds at most one second's worth, so its backlog goes out
at that pace while the others' deliveries are claimed beside it (the claim takes each subscription's allowance
from its own due rows, in turns across subscriptions). A slow one (answers after seconds) is held to a share of the
in-flight slots (:attr:`Pacer.share`), so the remaining slots are always there for the others; while the leader has
sent to only one subscription this term there are no others to keep them for, and it may use all :attr:`Pacer.slots`
(a lone receiver measured 31 % of straight POSTs' rate with the reserve, 43-46 % without).

Kept in the dispatcher's memory for a leader's term: a new leader starts every bucket full, which at worst sends
one extra second's worth at a hand-over.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class Bucket:
    """A token bucket: ``rate`` tokens a second, at most ``rate`` (at least 1) kept."""

    rate: float
    tokens: float
    at: float

    def refill(self, now: float) -> None:
        self.tokens = min(max(self.rate, 1.0), self.tokens + (now - self.at) * self.rate)
        self.at = now

    def wait(self) -> float:
        """Seconds until a whole token is there (0 when one is)."""
        return max(0.0, (1.0 - self.tokens) / self.rate)


@dataclass
class Pacer:
    """The allowance of every subscription this dispatcher has sent to, and what is in flight per subscription."""

    share: int
    ticks: Callable[[], float]
    slots: int = 0
    """All the in-flight slots, which a lone subscription may use (0: always hold it to ``share``)."""
    buckets: dict[int, Bucket] = field(default_factory=dict)
    inflight: dict[int, int] = field(default_factory=dict)

    def most(self) -> int:
        """How many slots one subscription may hold now: its share, or every slot while it is the only one."""
        return self.slots if self.slots and len(self.buckets) <= 1 else self.share

    def allowances(self) -> tuple[list[int], list[int]]:
        """(subscription ids, how many each may be sent now) for the claim; a subscription not listed may be sent
        a second's worth, up to :meth:`most`."""
        now, most = self.ticks(), self.most()
        ids, counts = [], []
        for sid, bucket in self.buckets.items():
            bucket.refill(now)
            ids.append(sid)
            counts.append(max(0, min(math.floor(bucket.tokens), most - self.inflight.get(sid, 0))))
        return ids, counts

    def sent(self, subscription_id: int, rate: float) -> None:
        """One delivery to the subscription was claimed (``rate``: its limit as stored now)."""
        now = self.ticks()
        bucket = self.buckets.get(subscription_id)
        if bucket is None:
            bucket = self.buckets[subscription_id] = Bucket(rate, max(rate, 1.0), now)
        else:
            bucket.rate = rate
            bucket.refill(now)
        bucket.tokens -= 1
        self.inflight[subscription_id] = self.inflight.get(subscription_id, 0) + 1

    def finished(self, subscription_id: int) -> None:
        """One of the subscription's attempts ended (its slot is free)."""
        left = self.inflight.get(subscription_id, 0) - 1
        if left > 0:
            self.inflight[subscription_id] = left
        else:
            self.inflight.pop(subscription_id, None)

    def next_token(self) -> float | None:
        """Seconds until the first subscription held back by its rate gets a token again (None: none is)."""
        now = self.ticks()
        waits = []
        for bucket in self.buckets.values():
            bucket.refill(now)
            if bucket.tokens < 1.0:
                waits.append(bucket.wait())
        return min(waits) if waits else None
