"""Background workers run by the server, started and stopped with the app.

A worker is either an async context manager, or any object with ``start()`` and
``stop()`` (sync or async). All are entered through one ``AsyncExitStack`` so
they stop in reverse order of start, even when a later one fails to start.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class StartStop(Protocol):
    """A background worker with an explicit lifecycle."""

    def start(self) -> Any: ...

    def stop(self) -> Any: ...


async def _maybe_await(result: Any) -> None:
    if inspect.isawaitable(result):
        await result


@asynccontextmanager
async def _started(worker: StartStop) -> AsyncIterator[None]:
    await _maybe_await(worker.start())
    try:
        yield
    finally:
        await _maybe_await(worker.stop())


async def enter_workers(stack: AsyncExitStack, workers: Sequence[Any]) -> None:
    """Start each worker in order, registering its stop on ``stack``."""
    for worker in workers:
        if isinstance(worker, AbstractAsyncContextManager):
            await stack.enter_async_context(worker)
        elif isinstance(worker, StartStop):
            await stack.enter_async_context(_started(worker))
        else:
            raise TypeError(
                f"background worker {worker!r} is neither an async context manager "
                "nor an object with start()/stop()"
            )
