"""The check interface: what every analyzer check is given and what it returns.

A check looks at one scope (drift, data quality, performance, ...) of one model version
in one window. `ModelAnalysis.run` builds a `CheckContext` per version and runs each of
its checks in turn; adding a check is one class with a `scope` and a `run`, added to
`default_checks()`, and one `FindingKind` per kind of finding it raises.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import polars as pl
import sqlalchemy as sa

from inferloop.store.vocabulary import CheckScope

from ._config import AnalyzerConfig
from ._drift_cells import DriftCellResult
from ._observations import Observation, Window
from ._payloads import features_frame
from ._reference_cache import LoadedReference, ReferenceCache

NS = 1_000_000_000


@dataclass(frozen=True)
class ReportFrames:
    """What a drift report of the window is drawn from: its features and the reference."""

    current: pl.DataFrame
    reference: LoadedReference


@dataclass(frozen=True)
class CheckResult:
    """What one check found in one window.

    `evaluated` says the check had enough data to judge its scope: only then can the
    scope's earlier findings resolve. `report_frames`, when given, let the run render
    reports of the findings that open. `drift_cells` are every drift test it ran, for
    the drift table (alarmed or not).
    """

    observations: list[Observation] = field(default_factory=list)
    evaluated: bool = False
    report_frames: ReportFrames | None = None
    drift_cells: list[DriftCellResult] = field(default_factory=list)


class Check(Protocol):
    """One kind of analysis; `run` may read the store through `context.connection`."""

    scope: CheckScope

    def run(self, context: CheckContext) -> CheckResult: ...


@dataclass
class CheckContext:
    """One model version's current window, its previous period, and shared lazy inputs."""

    connection: sa.Connection
    config: AnalyzerConfig
    window: Window
    events: list[dict[str, Any]]
    """Events of the current window (newest first, at most `config.max_events`)."""
    previous: list[dict[str, Any]]
    """Events of the period of the same length just before the window."""
    references: ReferenceCache

    @property
    def window_ns(self) -> int:
        return self.window.end_ns - self.window.start_ns

    @cached_property
    def features(self) -> pl.DataFrame:
        """The current window's inputs and outputs as a feature frame."""
        return features_frame(self.events)

    @cached_property
    def reference(self) -> LoadedReference | None:
        """The drift reference of this version (pinned, first events or previous period)."""
        return self.references.reference(self.connection, self.window, self.previous)

    def against(self, baseline: dict[str, Any]) -> Window:
        """The window, with `baseline` described in the evidence of what it finds."""
        return dataclasses.replace(self.window, baseline=baseline)

    def against_previous_period(self) -> Window:
        """The window compared with the period just before it."""
        return self.against(
            {
                "type": "previous_period",
                "start_ns": self.window.start_ns - self.window_ns,
                "end_ns": self.window.start_ns,
            }
        )
