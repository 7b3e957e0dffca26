"""One analysis run of one model: read its windows, run the checks, write findings.

Per active version, the run reads the current window and the period before it, builds a
`CheckContext` and runs every check; then, in one transaction, the observations become
findings (only the scopes a check evaluated can resolve) and every drift test becomes a
cell of the drift table; drift findings that open get their Evidently report.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.engine import Engine

from inferloop.store.base import begin_write
from inferloop.store.drift_cells import write_cells
from inferloop.store.events_read import window_events
from inferloop.store.vocabulary import CheckScope, FindingStatus

from ._check_drift import DataQualityCheck, DriftCheck
from ._check_labels import LabelQualityCheck
from ._check_performance import ChangePointCheck, PerformanceCheck
from ._checks import NS, Check, CheckContext, ReportFrames
from ._config import AnalyzerConfig
from ._drift_cells import DriftCellResult
from ._findings import FindingChange, apply_observations
from ._observations import Observation, Window
from ._reference_cache import ReferenceCache
from ._reports import store_drift_report

logger = logging.getLogger(__name__)


def default_checks() -> list[Check]:
    """Every check, in the order their findings are raised."""
    return [
        DriftCheck(),
        DataQualityCheck(),
        PerformanceCheck(),
        ChangePointCheck(),
        LabelQualityCheck(),
    ]


class ModelAnalysis:
    """Runs the checks of one model; keeps reference profiles between runs."""

    def __init__(
        self,
        engine: Engine,
        config: AnalyzerConfig,
        reports_dir: str | Path,
        *,
        checks: Sequence[Check] | None = None,
    ) -> None:
        self.engine = engine
        self.config = config
        self.reports_dir = Path(reports_dir)
        self.checks = list(default_checks() if checks is None else checks)
        self.references = ReferenceCache(config)

    def run(self, model: str, versions: list[str], now_ns: int) -> list[FindingChange]:
        window_ns = int(self.config.window_s * NS)
        start_ns = now_ns - window_ns
        limit = self.config.max_events
        observations: list[Observation] = []
        evaluated: set[tuple[str | None, CheckScope]] = set()
        report_frames: dict[str, ReportFrames] = {}
        cells: list[DriftCellResult] = []
        with self.engine.connect() as connection:
            for version in versions:
                context = CheckContext(
                    connection=connection,
                    config=self.config,
                    window=Window(model, version, start_ns, now_ns),
                    events=window_events(connection, model, version, start_ns, now_ns, limit),
                    previous=window_events(
                        connection, model, version, start_ns - window_ns, start_ns, limit
                    ),
                    references=self.references,
                )
                for check in self.checks:
                    result = check.run(context)
                    observations += result.observations
                    cells += result.drift_cells
                    if result.evaluated:
                        evaluated.add((version, check.scope))
                    if result.report_frames is not None:
                        report_frames[version] = result.report_frames
        with begin_write(self.engine) as connection:  # reads the active findings first
            changes = apply_observations(
                connection,
                model,
                observations,
                evaluated=evaluated,
                now_ns=now_ns,
                confirm_runs=self.config.confirm_runs,
                confirm_after_ns=self.config.confirm_after_ns,
            )
            write_cells(connection, _cell_rows(cells, changes, now_ns))
        if self.config.render_reports:
            self._render_reports(changes, report_frames)
        return changes

    def _render_reports(
        self, changes: list[FindingChange], frames: dict[str, ReportFrames]
    ) -> None:
        for change in changes:
            obs = change.observation
            if (
                obs is None
                or not obs.wants_report
                or change.after != FindingStatus.OPEN
                or change.before == FindingStatus.OPEN
            ):
                continue
            if obs.version not in frames:
                continue
            inputs = frames[obs.version]
            try:
                store_drift_report(
                    self.engine,
                    change.finding_id,
                    self.reports_dir,
                    inputs.reference.frame,
                    inputs.current,
                    inputs.reference.kinds,
                )
            except Exception:  # a report is a convenience: never lose the finding over it
                logger.exception(
                    "could not render the drift report of finding %s", change.finding_id
                )


def _cell_rows(
    cells: list[DriftCellResult], changes: list[FindingChange], now_ns: int
) -> list[dict]:
    """The cells as rows, each alarmed one with the id of the finding it raised or updated."""
    finding_ids = {
        change.fingerprint: change.finding_id for change in changes if change.observation
    }
    return [
        cell.row(
            finding_id=finding_ids.get(cell.fingerprint) if cell.alarmed else None,
            analyzed_at_ns=now_ns,
        )
        for cell in cells
    ]
