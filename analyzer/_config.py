"""What an analyzer run looks at and how strict it is (one place for the knobs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ._data_quality import DataQualityOptions
from ._drift import DriftOptions
from ._performance import PerfOptions
from ._quality import QualityOptions


@dataclass(frozen=True, kw_only=True)
class AnalyzerConfig:
    window_s: float = 900.0
    """The current window: the last `window_s` seconds of events."""
    baseline: Literal["first_events", "previous_period"] = "first_events"
    """Drift reference when no dataset is pinned: the version's first `baseline_events`
    events, or the period just before the window. Performance and quality always
    compare with the previous period."""
    baseline_events: int = 2000
    min_rows: int = 200
    """Fewer feature rows than this in a window: drift is not evaluated."""
    max_events: int = 200_000
    confirm_runs: int = 2
    confirm_after_s: float | None = None
    """A pending finding opens only once it has been seen for this long (default: one
    window), so that the confirming run looks at fresh data, not the same window again."""
    lease_s: float = 300.0
    change_point_method: Literal["cusum", "page_hinkley"] = "cusum"
    change_point_minutes: int = 360
    change_point_warmup: int = 120
    prediction_key: str | None = None
    """Output field holding the prediction, for label joins (default: guessed)."""
    render_reports: bool = True
    drift: DriftOptions = field(default_factory=DriftOptions)
    performance: PerfOptions = field(default_factory=PerfOptions)
    quality: QualityOptions = field(default_factory=QualityOptions)
    data_quality: DataQualityOptions = field(default_factory=DataQualityOptions)

    @property
    def confirm_after_ns(self) -> int:
        return int((self.window_s if self.confirm_after_s is None else self.confirm_after_s) * 1e9)

    def __post_init__(self) -> None:
        if self.confirm_after_s is not None and self.confirm_after_s < 0:
            raise ValueError("confirm_after_s must be ≥ 0")
        if self.window_s <= 0 or self.lease_s <= 0:
            raise ValueError("window_s and lease_s must be positive")
        if self.confirm_runs < 1 or self.baseline_events < 1 or self.min_rows < 1:
            raise ValueError("confirm_runs, baseline_events and min_rows must be ≥ 1")
        if self.baseline not in ("first_events", "previous_period"):
            raise ValueError("baseline must be 'first_events' or 'previous_period'")
