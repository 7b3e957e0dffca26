"""`last_prediction_id()` keeps each thread's and each asyncio task's own latest prediction.

The sync wrapper updates a per-thread slot in place instead of setting a context variable
on every call (`sdk/_last.py`); these tests hold it to what a context variable would give.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from inferloop.sdk import MemoryTransport, flush, last_prediction_id, monitor

# Every test here runs with the C wrapper and with the Python one (conftest.wrapper_kind).
pytestmark = pytest.mark.usefixtures("wrapper_kind")


def _predict() -> object:
    @monitor(model="last")
    def predict(x):
        return x

    return predict


def test_each_thread_sees_its_own_latest_prediction(memory: MemoryTransport) -> None:
    predict = _predict()
    barrier = threading.Barrier(4)
    seen: dict[int, list[tuple[str | None, str | None]]] = {}

    def serve(worker: int) -> None:
        pairs = []
        for step in range(50):
            predict(worker * 1000 + step)
            mine = last_prediction_id()
            if step == 25:
                barrier.wait(5)  # the others are calling meanwhile
            pairs.append((mine, last_prediction_id()))
        seen[worker] = pairs

    threads = [threading.Thread(target=serve, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert flush(5)
    by_output = {e["outputs"]["rows"][0]["value"]: e["prediction_id"] for e in memory.events}
    for worker, pairs in seen.items():
        expected = [by_output[worker * 1000 + step] for step in range(50)]
        assert [mine for mine, _ in pairs] == expected
        assert [again for _, again in pairs] == expected  # no other thread's call leaked in


def test_a_thread_running_a_copy_of_the_context_does_not_overwrite_the_callers(
    memory: MemoryTransport,
) -> None:
    predict = _predict()
    predict(1)
    mine = last_prediction_id()
    with ThreadPoolExecutor(1) as pool:
        theirs = pool.submit(
            contextvars.copy_context().run, lambda: (predict(2), last_prediction_id())[1]
        ).result()
    assert theirs != mine
    assert last_prediction_id() == mine
    predict(3)  # the caller's own slot still updates
    assert last_prediction_id() not in (mine, theirs)


def test_asyncio_tasks_keep_their_own_and_to_thread_keeps_the_callers(
    memory: MemoryTransport,
) -> None:
    predict = _predict()
    predict(0)  # a slot in the main thread's context, which the tasks inherit a copy of
    before = last_prediction_id()

    async def task(value: int, event: asyncio.Event) -> tuple[str | None, str | None]:
        predict(value)
        mine = last_prediction_id()
        await event.wait()  # the other task calls meanwhile
        return mine, last_prediction_id()

    async def main() -> tuple[list[tuple[str | None, str | None]], str | None, str | None]:
        event = asyncio.Event()
        tasks = [asyncio.create_task(task(value, event)) for value in (1, 2)]
        await asyncio.sleep(0)
        event.set()
        pairs = await asyncio.gather(*tasks)
        predict(3)
        own = last_prediction_id()
        await asyncio.to_thread(predict, 4)  # a context copy run in another thread
        return pairs, own, last_prediction_id()

    pairs, own, after_to_thread = asyncio.run(main())
    for mine, again in pairs:
        assert mine == again
    assert pairs[0][0] != pairs[1][0]
    assert after_to_thread == own
    assert last_prediction_id() == before  # asyncio.run ran main in a copy of this context
    assert flush(5)
    by_output = {e["outputs"]["rows"][0]["value"]: e["prediction_id"] for e in memory.events}
    assert [pairs[0][0], pairs[1][0], own, before] == [by_output[v] for v in (1, 2, 3, 0)]
