"""Client-side rate limits: a token bucket per key on an injected clock.

PagerDuty's Events API allows about 120 events a minute per routing key and
answers 429 beyond it; staying under the limit ourselves keeps a burst of findings
from turning into a storm of retries. A bucket holds `burst` tokens and refills at
`rate_per_s`; taking a token either succeeds (wait 0) or says how long until one is
there, so the caller can reschedule instead of sleeping.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class TokenBucket:
    """`burst` tokens, refilled continuously at `rate_per_s`."""

    def __init__(
        self, *, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not rate_per_s > 0:
            raise ValueError("rate_per_s must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self._rate = float(rate_per_s)
        self._burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()

    def try_acquire(self) -> float:
        """Take one token: 0.0 if taken, else the seconds until one is available."""
        now = self._clock()
        elapsed = max(0.0, now - self._at)
        self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self._rate


class RateLimiter:
    """One `TokenBucket` per key (a routing key's fingerprint, a receiver name).

    Thread-safe; keeps at most `max_keys` buckets, forgetting the least recently
    used (a forgotten key starts again with a full bucket).
    """

    def __init__(
        self,
        *,
        per_minute: float = 120.0,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 1024,
    ) -> None:
        if not per_minute > 0:
            raise ValueError("per_minute must be positive")
        self._rate_per_s = per_minute / 60.0
        self._burst = burst if burst is not None else max(1, int(per_minute // 6))
        if self._burst < 1:
            raise ValueError("burst must be at least 1")
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._lock = threading.Lock()

    def try_acquire(self, key: str) -> float:
        """Take one token for `key`: 0.0 if taken, else the seconds to wait."""
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = TokenBucket(
                    rate_per_s=self._rate_per_s, burst=self._burst, clock=self._clock
                )
                self._buckets[key] = bucket
                if len(self._buckets) > self._max_keys:
                    self._buckets.popitem(last=False)
            else:
                self._buckets.move_to_end(key)
            return bucket.try_acquire()

    def __repr__(self) -> str:
        per_minute = self._rate_per_s * 60
        return f"RateLimiter(per_minute={per_minute:g}, burst={self._burst})"
