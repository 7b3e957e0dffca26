"""Serving traffic for fault tests: a thread calling a monitored function at a steady pace."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["Traffic"]


class Traffic:
    """Calls `call(i)` in bursts of `burst` every `pause_s` until stopped; counts the calls
    and keeps each call's duration, so a test can compare the serving path across phases."""

    def __init__(self, call: Callable[[int], object], *, burst: int = 50, pause_s: float = 0.05):
        self._call = call
        self._burst = burst
        self._pause_s = pause_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-traffic", daemon=True)
        self.emitted = 0
        self.durations_s: list[float] = []

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> int:
        """Stop calling; the number of calls made (each one an event emitted)."""
        self._stop.set()
        self._thread.join(60)
        assert not self._thread.is_alive(), "the serving thread did not stop"
        return self.emitted

    def mark(self) -> int:
        """Index into `durations_s` now: the start of a phase."""
        return len(self.durations_s)

    def _run(self) -> None:
        clock = time.perf_counter
        while not self._stop.is_set():
            for _ in range(self._burst):
                started = clock()
                self._call(self.emitted)
                self.durations_s.append(clock() - started)
                self.emitted += 1
            self._stop.wait(self._pause_s)
