"""Stopping long-running commands cleanly on Ctrl-C or SIGTERM.

The kernel may deliver a signal to any thread (uvicorn's, polars', torch's…). CPython
then only runs the Python handler when the main thread next executes bytecode, so a
main thread parked in `Event.wait()` without a timeout never notices: it has to wake
up now and then.
"""

from __future__ import annotations

import signal
import sys
import threading

POLL_S = 0.2


def stop_event_on_signals() -> threading.Event:
    """An event set by SIGINT or SIGTERM, so loops can finish their batch and exit."""
    stop = threading.Event()

    def handler(signum, _frame):
        print(f"\nreceived {signal.Signals(signum).name}, stopping…", file=sys.stderr)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def wait_until_set(event: threading.Event) -> None:
    """Block until `event` is set, waking every POLL_S so signal handlers get to run."""
    while not event.wait(POLL_S):
        pass
