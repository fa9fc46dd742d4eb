"""Attempts per minute, per key: the public status page's limit on lookups per client address and per tracking
number (issue 14).

Why a sliding log and not a token bucket (as the collector's ratelimit.py): the limit is small and stated to people
("5 tries a minute"), and the log gives the exact wait until the oldest attempt leaves the window, for the
page and its ``Retry-After``. The keys are kept in memory, the least recently used dropped beyond ``max_keys``, so
the limit is per replica: with three replicas an address gets three times the attempts (a proxy's limit, or a
shared store, is the place for a global one).
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field


@dataclass
class Attempts:
    """At most ``limit`` attempts per key in any ``window`` seconds; remembers up to ``max_keys`` keys."""

    limit: int
    window: float = 60.0
    max_keys: int = 100_000
    _seen: OrderedDict[str, deque[float]] = field(default_factory=OrderedDict)

    def take(self, key: str, now: float | None = None) -> float:
        """Count an attempt for ``key`` and answer 0, or, when the key has had its ``limit`` in the window, count
        nothing and answer the seconds until the oldest attempt leaves it."""
        t = time.monotonic() if now is None else now
        seen = self._seen.pop(key, None) or deque()
        while seen and seen[0] <= t - self.window:
            seen.popleft()
        wait = seen[0] + self.window - t if len(seen) >= self.limit else 0.0
        if not wait:
            seen.append(t)
        self._seen[key] = seen
        if len(self._seen) > self.max_keys:
            self._seen.popitem(last=False)
        return wait
