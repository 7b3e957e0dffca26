"""When to try a failed delivery again: pure arithmetic on an injected random source.

A 429 waits what the receiver asked (`Retry-After`), never less; 5xx and network
errors wait a full-jitter exponential back-off (a uniform draw below
`base · 2^attempt`, capped), which spreads a herd of retries after an outage. Past
the receiver's deadline the notification is given up (dead-lettered), never
retried forever.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ._model import DeliveryOutcome

NS = 1_000_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Back-off of one receiver."""

    base_s: float = 1.0
    max_delay_s: float = 300.0
    deadline_s: float = 6 * 3600.0
    """Give up this long after the notification was created."""

    def __post_init__(self) -> None:
        if not (0 < self.base_s <= self.max_delay_s) or self.deadline_s <= 0:
            raise ValueError("need 0 < base_s <= max_delay_s and deadline_s > 0")


def next_attempt_ns(
    outcome: DeliveryOutcome,
    *,
    attempts: int,
    created_at_ns: int,
    now_ns: int,
    policy: RetryPolicy,
    rng: random.Random,
) -> int | None:
    """When to retry after a RETRY outcome (`attempts` made so far, this one included);
    None when the deadline would pass first."""
    if outcome.retry_after_s is not None:
        delay_s = max(outcome.retry_after_s, 0.0)
    else:
        ceiling = min(policy.max_delay_s, policy.base_s * 2 ** min(attempts - 1, 60))
        delay_s = rng.uniform(0.0, ceiling)
    at = now_ns + int(delay_s * NS)
    if at > created_at_ns + int(policy.deadline_s * NS):
        return None
    return at
