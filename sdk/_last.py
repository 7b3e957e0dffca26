"""Where `last_prediction_id()` finds the latest prediction of this thread or asyncio task.

One context variable holds it. Setting a context variable on every call is what the
obvious design does, and it was the dearest step of the hot path: 450 ns a call in a
serving loop (the Token and the new mapping it allocates, and the garbage collection they
cause), more than the two clock reads together. So a thread with no running event loop
keeps a `ThreadSlot` in the variable, set once, and each call updates it in place.

Ownership keeps the contexts apart, as the variable itself would:
- a slot belongs to the thread that made it; a copy of the context run in another thread
  (`asyncio.to_thread`, an executor given `copy_context().run`) holds a slot it does not
  own, so its first call there sets a slot of its own;
- under a running event loop every call sets the variable, so each task keeps its own
  value, as context variables promise.

Telling whether an event loop runs takes asyncio's `_get_running_loop` (a C function, a
few tens of ns), so the SDK imports asyncio: ~30 ms once, at import, that serving stacks
built on asyncio have paid already.

One difference from a variable set on every call: a copy of the context run in the *same*
thread with no event loop (`copy_context().run(predict)`) updates the slot it shares, so
the caller sees that prediction afterwards.
"""

from __future__ import annotations

import threading
from asyncio import _get_running_loop
from contextvars import ContextVar
from typing import Any

get_ident = threading.get_ident
running_loop = _get_running_loop  # the C function: None outside a running event loop


class ThreadSlot:
    """The latest prediction of one thread's own context, updated in place."""

    __slots__ = ("thread", "prediction")

    def __init__(self, thread: int, prediction: Any) -> None:
        self.thread = thread
        self.prediction = prediction


last_prediction: ContextVar[Any] = ContextVar("inferloop_last_prediction", default=None)
"""A ThreadSlot, or the prediction itself when it was set under an event loop."""


def remember(prediction: Any) -> None:
    """Make `prediction` this thread's or task's latest (the wrappers inline this)."""
    if running_loop() is not None:
        last_prediction.set(prediction)
        return
    slot = last_prediction.get()
    if type(slot) is ThreadSlot and slot.thread == get_ident():
        slot.prediction = prediction
    else:
        last_prediction.set(ThreadSlot(get_ident(), prediction))


def recall() -> Any:
    """The prediction `remember` last stored in this context, or None."""
    value = last_prediction.get()
    return value.prediction if type(value) is ThreadSlot else value
