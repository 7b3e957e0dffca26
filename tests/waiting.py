"""Polling for a condition that another thread or process makes true, with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable

POLL_S = 0.05


def wait_for(
    predicate: Callable[[], object], timeout: float = 10.0, what: str = "the condition"
) -> None:
    """Return once `predicate()` is truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(POLL_S)
