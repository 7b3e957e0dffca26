"""The background loop every worker uses: steps repeat, failures do not end it, stop is prompt."""

from __future__ import annotations

import logging
import threading
import time

from waiting import wait_for

from inferloop.periodic import PeriodicThread

LOG = logging.getLogger("test-periodic")


def test_a_failing_step_is_logged_and_the_loop_goes_on(caplog) -> None:
    calls: list[int] = []

    def step() -> float:
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("database restarting")
        return 0.01

    worker = PeriodicThread("test-loop", step, retry_s=0.01, logger=LOG)
    worker.start()
    wait_for(lambda: len(calls) >= 3, timeout=5, what="the loop to go on after a failure")
    worker.stop()
    assert "test-loop: a round failed" in caplog.text


def test_stop_wakes_a_long_wait_at_once() -> None:
    ran = threading.Event()

    def step() -> float:
        ran.set()
        return 3600.0

    worker = PeriodicThread("test-wait", step, retry_s=3600.0, logger=LOG)
    worker.start()
    assert ran.wait(5)
    started = time.monotonic()
    worker.stop(timeout=5)
    assert time.monotonic() - started < 1.0
    assert worker.stopping
