"""The process-wide emitter. `None` until `configure()`: the hot path's only check."""

from __future__ import annotations

from typing import Any

emitter: Any = None
