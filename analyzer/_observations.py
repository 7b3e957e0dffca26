"""What one analysis run saw, before it becomes (or updates) a stored finding.

Pure: turns check results into `Observation`s with a kind, a severity, a title, the
evidence, and a fingerprint that stays the same across runs for the same condition,
which is what deduplicates findings.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from inferloop.store.vocabulary import SCOPE_OF_KIND, CheckScope, FindingKind, Severity

from ._changepoint import ChangePoint
from ._data_quality import DataQualityIssue
from ._drift import ColumnDrift, DriftReport
from ._embeddings import EmbeddingDrift
from ._payloads import output_column
from ._performance import PerfCheck


@dataclass(frozen=True)
class Observation:
    """One condition seen in one run; `apply_observations` turns it into a finding."""

    model: str
    version: str | None
    kind: FindingKind
    subject: str
    severity: Severity
    title: str
    evidence: dict[str, Any]
    window_start_ns: int
    window_end_ns: int
    wants_report: bool = False

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.model, self.version, self.kind, self.subject)

    @property
    def scope(self) -> CheckScope:
        return SCOPE_OF_KIND[self.kind]


def fingerprint(model: str, version: str | None, kind: str, subject: str) -> str:
    key = "\x1f".join((model, version or "", kind, subject))
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Window:
    """The period a check looks at, and the baseline it compares it with (for evidence)."""

    model: str
    version: str | None
    start_ns: int
    end_ns: int
    baseline: dict[str, Any] = field(default_factory=dict)

    def observe(
        self,
        kind: FindingKind,
        subject: str,
        severity: Severity,
        title: str,
        evidence: dict[str, Any],
        **kw: Any,
    ) -> Observation:
        evidence = {
            "window": {"start_ns": self.start_ns, "end_ns": self.end_ns},
            "baseline": self.baseline,
        } | evidence
        return Observation(
            self.model,
            self.version,
            kind,
            subject,
            severity,
            title,
            evidence,
            self.start_ns,
            self.end_ns,
            **kw,
        )


def _column_evidence(column: ColumnDrift) -> dict[str, Any]:
    return {
        "feature": column.column,
        "kind": column.kind.value,
        "test": column.test,
        "statistic": column.statistic,
        "score": column.score,
        "score_kind": column.score_kind,
        "threshold": column.threshold,
        "effect": {column.effect_name: column.effect},
        "reference_rows": column.reference_rows,
        "current_rows": column.current_rows,
    }


def drift_observations(
    window: Window, report: DriftReport, alarms: Sequence[ColumnDrift], sample_ids: Sequence[str]
) -> list[Observation]:
    found = []
    for column in alarms:
        kind = (
            FindingKind.PREDICTION_DRIFT if output_column(column.column) else FindingKind.DATA_DRIFT
        )
        title = f"{window.model} {window.version or ''}: {'prediction' if kind == FindingKind.PREDICTION_DRIFT else 'feature'} {column.column!r} drifted ({column.test})".replace(
            "  ", " "
        )
        evidence = _column_evidence(column) | {"sample_prediction_ids": list(sample_ids)}
        found.append(
            window.observe(
                kind, column.column, Severity.WARNING, title, evidence, wants_report=True
            )
        )
    if report.dataset_drift:
        evidence = {
            "drifted_share": report.drifted_share,
            "drifted_columns": [c.column for c in report.columns if c.drifted],
            "features": [_column_evidence(c) for c in report.columns],
            "sample_prediction_ids": list(sample_ids),
        }
        title = f"{window.model} {window.version or ''}: dataset drift, {report.drifted_share:.0%} of columns drifted"
        found.append(
            window.observe(
                FindingKind.DATASET_DRIFT,
                "*",
                Severity.CRITICAL,
                title,
                evidence,
                wants_report=True,
            )
        )
    return found


def embedding_observation(window: Window, name: str, result: EmbeddingDrift) -> list[Observation]:
    if not result.drifted:
        return []
    evidence = {
        "method": result.method,
        "share": result.share,
        "components": list(result.components),
    }
    return [
        window.observe(
            FindingKind.EMBEDDING_DRIFT,
            name,
            Severity.WARNING,
            f"{window.model}: embedding {name!r} drifted",
            evidence,
        )
    ]


def data_quality_observations(
    window: Window, issues: Sequence[DataQualityIssue]
) -> list[Observation]:
    return [
        window.observe(
            FindingKind.DATA_QUALITY,
            f"{issue.column}:{issue.check}",
            Severity.WARNING,
            f"{window.model}: {issue.check.replace('_', ' ')} in {issue.column!r} ({issue.share:.1%} of rows)",
            {
                "feature": issue.column,
                "check": issue.check,
                "share": issue.share,
                "reference_share": issue.reference_share,
                "p_value": issue.p_value,
                "examples": list(issue.examples),
            },
        )
        for issue in issues
    ]


def _check_evidence(check: PerfCheck) -> dict[str, Any]:
    return {
        "metric": check.metric,
        "baseline": check.baseline,
        "current": check.current,
        "change": check.change,
        "p_value": check.p_value,
    } | ({"detail": check.detail} if check.detail else {})


def performance_observations(window: Window, checks: Sequence[PerfCheck]) -> list[Observation]:
    found = []
    for check in checks:
        if not check.regressed:
            continue
        if check.metric == "error_rate":
            kind, severity = FindingKind.ERROR_RATE_REGRESSION, Severity.CRITICAL
            title = f"{window.model} {window.version}: error rate {check.baseline:.2%} -> {check.current:.2%}"
        elif check.metric == "throughput_per_s":
            kind, severity = FindingKind.THROUGHPUT_CHANGE, Severity.WARNING
            title = f"{window.model} {window.version}: throughput {check.baseline:.2f}/s -> {check.current:.2f}/s"
        else:
            kind = FindingKind.LATENCY_REGRESSION
            severity = Severity.CRITICAL if check.metric.endswith("p50_ms") else Severity.WARNING
            title = f"{window.model} {window.version}: {check.metric} {check.baseline:.1f} -> {check.current:.1f} ({check.change:+.0%})"
        found.append(window.observe(kind, check.metric, severity, title, _check_evidence(check)))
    return found


def quality_observations(
    window: Window, checks: Sequence[PerfCheck], labelled: int
) -> list[Observation]:
    return [
        window.observe(
            FindingKind.QUALITY_DROP,
            check.metric,
            Severity.CRITICAL,
            f"{window.model} {window.version}: {check.metric} {check.baseline:.3f} -> {check.current:.3f}",
            _check_evidence(check) | {"labelled_predictions": labelled},
        )
        for check in checks
        if check.regressed
    ]


def change_point_observations(
    window: Window, metric: str, points: Sequence[ChangePoint], minutes: Sequence[int]
) -> list[Observation]:
    """Only a change whose alarm falls inside the current window is reported."""
    found = []
    for point in points:
        alarm_s = minutes[point.index]
        if not window.start_ns <= alarm_s * 10**9 < window.end_ns:
            continue
        evidence = {
            "metric": metric,
            "direction": point.direction,
            "alarm_minute_s": alarm_s,
            "change_started_minute_s": minutes[point.start_index],
            "statistic": point.statistic,
        }
        title = f"{window.model} {window.version}: {metric} shifted {point.direction}"
        found.append(
            window.observe(
                FindingKind.CHANGE_POINT,
                f"{metric}:{point.direction}",
                Severity.INFO,
                title,
                evidence,
            )
        )
    return found
