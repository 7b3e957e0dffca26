"""Rate-limited logging of SDK-internal problems: a failing broker must not flood the host's logs."""

from __future__ import annotations

import contextlib
import logging
import threading
import time

logger = logging.getLogger("inferloop.sdk")


class RateLimitedLog:
    """Logs each kind of problem at most once per interval, saying how many were suppressed."""

    def __init__(self, interval_s: float = 60.0) -> None:
        self._interval_s = interval_s
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def warning(self, kind: str, message: str, *args: object) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self._interval_s:
                self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
                return
            self._last[kind] = now
            suppressed = self._suppressed.pop(kind, 0)
        with contextlib.suppress(Exception):  # a broken logging setup must not break the SDK
            # Formatted here so that log records never keep exceptions (and their frames,
            # sockets, tensors) alive in handlers that retain records.
            text = message % args if args else message
            if suppressed:
                text += f" ({suppressed} similar messages suppressed)"
            logger.warning("%s", text)
