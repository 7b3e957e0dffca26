"""Every drift test of a window as a heatmap cell, whether it alarmed or not.

Pure: a `DriftCellResult` carries one test's outcome and the fingerprint its finding
would have, so the run can put the finding's id on the cell once findings are written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from inferloop.store.vocabulary import FindingKind

from ._drift import ColumnDrift, DriftOptions, DriftReport
from ._embeddings import EmbeddingDrift
from ._observations import Window, fingerprint
from ._payloads import output_column

DATASET_FEATURE = "*"
"""The subject of the dataset-drift cell (and of its finding)."""


@dataclass(frozen=True)
class DriftCellResult:
    """One test in one window; `alarmed` when the run raised an observation for it."""

    window: Window
    kind: FindingKind
    feature: str
    test: str
    score_kind: str
    statistic: float | None
    score: float | None
    threshold: float | None
    drifted: bool
    alarmed: bool
    column_kind: str | None = None
    effect_name: str | None = None
    effect: float | None = None
    reference_rows: int | None = None
    current_rows: int | None = None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.window.model, self.window.version, self.kind, self.feature)

    def row(self, *, finding_id: int | None, analyzed_at_ns: int) -> dict[str, Any]:
        """The stored cell (`inferloop.store.drift_cells.write_cells` takes these)."""
        return {
            "model": self.window.model,
            "window_end_ns": self.window.end_ns,
            "version": self.window.version or "",
            "kind": self.kind.value,
            "feature": self.feature,
            "window_start_ns": self.window.start_ns,
            "column_kind": self.column_kind,
            "test": self.test,
            "statistic": self.statistic,
            "score": self.score,
            "score_kind": self.score_kind,
            "threshold": self.threshold,
            "effect_name": self.effect_name,
            "effect": self.effect,
            "drifted": self.drifted,
            "alarmed": self.alarmed,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "baseline": self.window.baseline,
            "finding_id": finding_id,
            "analyzed_at_ns": analyzed_at_ns,
        }


def _column_cell(window: Window, column: ColumnDrift, alarmed: bool) -> DriftCellResult:
    kind = FindingKind.PREDICTION_DRIFT if output_column(column.column) else FindingKind.DATA_DRIFT
    return DriftCellResult(
        window,
        kind,
        column.column,
        column.test,
        column.score_kind,
        column.statistic,
        column.score,
        column.threshold,
        column.drifted,
        alarmed,
        column_kind=column.kind.value,
        effect_name=column.effect_name,
        effect=column.effect,
        reference_rows=column.reference_rows,
        current_rows=column.current_rows,
    )


def drift_cells(
    window: Window, report: DriftReport, alarms: Sequence[ColumnDrift], options: DriftOptions
) -> list[DriftCellResult]:
    """A cell per tested column, then one for the dataset's share of drifted columns."""
    alarmed = {column.column for column in alarms}
    cells = [_column_cell(window, c, c.column in alarmed) for c in report.columns]
    if report.columns:
        cells.append(
            DriftCellResult(
                window,
                FindingKind.DATASET_DRIFT,
                DATASET_FEATURE,
                "drift_share",
                "share",
                float(report.drifted_count),
                report.drifted_share,
                options.drift_share,
                report.dataset_drift,
                report.dataset_drift,
            )
        )
    return cells


def embedding_cell(window: Window, name: str, result: EmbeddingDrift) -> DriftCellResult:
    """The embedding `name` tested as a whole: the share of its components that moved."""
    return DriftCellResult(
        window,
        FindingKind.EMBEDDING_DRIFT,
        name,
        f"embedding_{result.method}",
        "share",
        float(len(result.components)),
        result.share,
        None,
        result.drifted,
        result.drifted,
    )
