"""Background work on a named daemon thread: call a step, wait, repeat, until stopped.

The analyzer, the alert evaluator and dispatcher, and retention all run this way.
A step that raises is logged and the loop goes on (the database may be back at the
next round); `stop()` wakes the wait at once, so shutdown never sits out an interval.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable


class PeriodicThread:
    """`start()` / `stop()` a thread that calls `step()`; `step` returns the seconds to
    wait before its next call (0 to go on at once), and a failed step waits `retry_s`."""

    def __init__(
        self, name: str, step: Callable[[], float], *, retry_s: float, logger: logging.Logger
    ) -> None:
        self.name = name
        self._step = step
        self._retry_s = retry_s
        self._logger = logger
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def stopping(self) -> bool:
        """True once `stop()` was asked: a long step can check it and return early."""
        return self._stop.is_set()

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                wait_s = self._step()
            except Exception:  # the loop outlives a bad round (database restart, ...)
                self._logger.exception("%s: a round failed", self.name)
                wait_s = self._retry_s
            if wait_s > 0:
                self._stop.wait(wait_s)
