"""The worker shares the serving process's GIL: a long drain must not stall serving threads.

CPython only takes the GIL from a busy thread every `sys.getswitchinterval()`; the test
raises that interval to half a second, so that a drain holding the GIL for a whole batch
shows up as a serving-thread stall of hundreds of milliseconds, while a drain that lets
the GIL go between slices stalls it for one slice (a few milliseconds at most here).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator

import pytest

from inferloop.sdk import configure, flush, monitor, register_extractor
from inferloop.sdk._emitter import DRAIN_SLICE
from inferloop.sdk._gil import GilRelease

BUILD_S = 200e-6  # the CPU each record costs the worker to build (a slow extractor)
RECORDS = 2_000  # one drain (batch_size 1,000, two batches): 0.4 s of GIL-held building


class Heavy:
    """An input whose summary takes the worker BUILD_S of pure-Python CPU."""


def _burn(value: Heavy, max_rows: int) -> dict:
    deadline = time.perf_counter() + BUILD_S
    while time.perf_counter() < deadline:
        pass
    return {"rows": [{"value": 1}]}


@pytest.fixture
def slow_switching() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.5)
    unregister = register_extractor(Heavy, _burn)
    try:
        yield
    finally:
        unregister()
        sys.setswitchinterval(before)


def test_a_serving_thread_gets_the_gil_back_between_slices_of_a_drain(slow_switching: None) -> None:
    # A gate-free transport and a long flush interval: the worker drains only when woken,
    # and the wake-up comes when the queue reaches one batch.
    transport = configure(
        transport="memory", batch_size=1_000, queue_size=10_000, flush_interval_s=10.0
    )
    predict = monitor(model="heavy")(lambda x: 0)
    heavy = Heavy()
    waits: list[float] = []
    running = threading.Event()
    stop = threading.Event()

    def serve() -> None:
        # Stands for a serving thread between requests: it sleeps (the GIL is free) and then
        # needs the GIL back; each wait for it is what a request would wait.
        running.set()
        while not stop.is_set():
            asleep = time.perf_counter()
            time.sleep(0.001)
            waits.append(time.perf_counter() - asleep - 0.001)

    for _ in range(RECORDS - 1):
        predict(heavy)
    server = threading.Thread(target=serve)
    server.start()
    assert running.wait(5)
    time.sleep(0.05)
    before = len(waits)
    predict(heavy)  # the queue reaches a batch: the worker wakes and drains 2,000 records
    assert flush(30)
    during = waits[before:]
    stop.set()
    server.join(10)

    assert len(transport.events) == RECORDS
    drain_s = RECORDS * BUILD_S
    slice_s = DRAIN_SLICE * BUILD_S
    # Held for the whole drain (about drain_s, 0.4 s), the serving thread would get the GIL
    # back once or twice while it lasts; sliced, after every slice (slice_s, 6 ms): dozens
    # of times, its typical wait about a slice. (A release of the GIL is an offer, not a
    # handoff: under load the worker may win it back, so single waits can be longer.)
    assert len(during) >= 10, (len(during), max(during, default=0.0))
    assert sorted(during)[len(during) // 2] < drain_s / 10, (sorted(during), slice_s)


def test_gil_release_yields_between_slices_and_hands_over_once_a_millisecond() -> None:
    now = [0.0]
    calls: list[str] = []
    release = GilRelease(
        handoff_s=0.001,
        clock=lambda: now[0],
        offer=lambda: calls.append("yield"),
        hand_over=lambda: calls.append("sleep"),
    )
    for _ in range(25):  # slices of 100 µs of work each
        now[0] += 100e-6
        release()
    # A sleep once a millisecond of work (every tenth slice), a yield after the others.
    assert calls.count("sleep") == release.handoffs == 2
    assert calls.index("sleep") == 9 and calls[10:19] == ["yield"] * 9 and calls[19] == "sleep"
    # After a quiet spell a new run of work starts its count afresh: a yield, not a sleep.
    now[0] += 5.0
    release.begin()
    now[0] += 100e-6
    release()
    assert calls[-1] == "yield" and release.handoffs == 2
