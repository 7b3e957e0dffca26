"""How the worker lets serving threads have the GIL between two slices of its work.

The worker shares the serving process's GIL. CPython takes the GIL from a busy thread only
after `sys.getswitchinterval()` (5 ms), so the worker offers it between slices. An offer is
not a handoff: a serving thread woken on another core needs tens of microseconds to run,
and by then a worker that only yielded (`os.sched_yield`, about 1 µs) has taken the GIL
back. Measured on this project's 2-core VM, with 100 µs slices: a thread woken every
millisecond waited p99 29 ms, max 68 ms behind a worker that only yielded, and no longer
than with no worker at all when the worker slept between slices.

A sleep is what hands the GIL over for sure, but `time.sleep(0)` costs ~37 µs of CPU here
(the VM programs a timer for it) against ~1 µs for a yield. So `GilRelease` yields after
most slices and sleeps once every `handoff_s` of work: a serving thread waits behind the
worker for at most about that long, and the sleeps cost a few percent of the worker's CPU.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

HANDOFF_S = 0.001
"""Longest run of worker slices between two sure handoffs of the GIL (see the module doc)."""


def _yield_cpu() -> None:
    os.sched_yield()


class GilRelease:
    """Called by the worker between two slices of work: yields, or sleeps once `handoff_s`
    has passed since the last sleep. The clock and the two ways to let go are injectable,
    so that tests run on virtual time."""

    def __init__(
        self,
        *,
        handoff_s: float = HANDOFF_S,
        clock: Callable[[], float] = time.perf_counter,
        offer: Callable[[], None] | None = None,
        hand_over: Callable[[], None] | None = None,
    ) -> None:
        self._handoff_s = handoff_s
        self._clock = clock
        if offer is None:
            offer = _yield_cpu if hasattr(os, "sched_yield") else lambda: time.sleep(0)
        self._offer = offer
        self._hand_over = hand_over or (lambda: time.sleep(0))
        self._last_handoff = clock()
        self.handoffs = 0
        """Sure handoffs (sleeps) so far."""

    def begin(self) -> None:
        """A run of work starts (the worker was idle): count `handoff_s` from now, so that
        a short drain after a quiet spell costs a yield, not a sleep."""
        self._last_handoff = self._clock()

    def __call__(self) -> None:
        if self._clock() - self._last_handoff < self._handoff_s:
            self._offer()
            return
        self._hand_over()
        self.handoffs += 1
        self._last_handoff = self._clock()
