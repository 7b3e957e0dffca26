"""Device time of CUDA work, measured with events on the caller's current stream.

The serving thread only records two events (asynchronous, no synchronisation); the worker
waits for the end event and reads the elapsed time later (`_events._cuda_elapsed_ns`).
"""

from __future__ import annotations

import sys
from typing import Any


def cuda_in_use() -> bool:
    """True once torch is imported and has initialised CUDA in this process (cheap to ask)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    try:
        return bool(torch.cuda.is_initialized())
    except Exception:  # noqa: BLE001
        return False


def begin() -> Any:
    """Record a start event on the current stream, or None if that is not possible."""
    try:
        import torch

        start = torch.cuda.Event(enable_timing=True)
        start.record()
        return start
    except Exception:  # noqa: BLE001 - timing is optional, the call is not
        return None


def end(start: Any) -> tuple[Any, Any] | None:
    """Record the end event; the pair is resolved by the worker."""
    if start is None:
        return None
    try:
        import torch

        stop = torch.cuda.Event(enable_timing=True)
        stop.record()
        return start, stop
    except Exception:  # noqa: BLE001
        return None
