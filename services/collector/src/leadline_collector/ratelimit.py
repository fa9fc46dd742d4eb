"""Token buckets per client IP and per form, so one abuser cannot flood a form or the spool."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field


@dataclass
class RateLimiter:
    """``rate`` requests per second sustained, ``burst`` at once, per key; remembers up to ``max_keys`` keys."""

    rate: float
    burst: float
    max_keys: int = 100_000
    _buckets: OrderedDict[str, tuple[float, float]] = field(default_factory=OrderedDict)

    def allow(self, key: str, now: float | None = None) -> float:
        """0 when the request may go ahead, else the seconds to wait before retrying."""
        t = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(key, (self.burst, t))
        tokens = min(self.burst, tokens + (t - last) * self.rate)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, t)
            wait = 0.0
        else:
            self._buckets[key] = (tokens, t)
            wait = (1 - tokens) / self.rate
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait
