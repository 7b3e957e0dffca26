"""The words the findings table stores: finding kinds, check scopes, severities, statuses.

`StrEnum`s, so each member *is* the string stored in the database and sent over the
API: the analyzer writes them, the routes, schemas and CLI read them, and none of those
needs the analyzer's numerical dependencies to know the allowed values.
"""

from __future__ import annotations

from enum import StrEnum


class Severity(StrEnum):
    """How urgent a finding is."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class FindingStatus(StrEnum):
    """Lifecycle: pending → open → resolved, or pending → dismissed."""

    PENDING = "pending"
    OPEN = "open"
    RESOLVED = "resolved"
    DISMISSED = "dismissed"


ACTIVE_STATUSES = (FindingStatus.PENDING, FindingStatus.OPEN)
"""Statuses of a finding whose condition is still being watched (updated, not re-added)."""


class CheckScope(StrEnum):
    """What one analyzer check evaluates; a finding can clear only in a run that evaluated
    its scope (a check skipped for lack of data resolves nothing)."""

    DRIFT = "drift"
    DATA_QUALITY = "data_quality"
    PERFORMANCE = "performance"
    CHANGE_POINTS = "change_points"
    QUALITY = "quality"
    ROLLOUT = "rollout"
    """Raised by the feedback loop's rollout worker, never by (so never cleared by) the
    analyzer."""


class FindingKind(StrEnum):
    """What kind of condition a finding names."""

    DATA_DRIFT = "data_drift"
    PREDICTION_DRIFT = "prediction_drift"
    DATASET_DRIFT = "dataset_drift"
    EMBEDDING_DRIFT = "embedding_drift"
    DATA_QUALITY = "data_quality"
    LATENCY_REGRESSION = "latency_regression"
    ERROR_RATE_REGRESSION = "error_rate_regression"
    THROUGHPUT_CHANGE = "throughput_change"
    CHANGE_POINT = "change_point"
    QUALITY_DROP = "quality_drop"
    ROLLOUT_FAILED = "rollout_failed"
    ROLLOUT_INCONCLUSIVE = "rollout_inconclusive"

    @property
    def scope(self) -> CheckScope:
        """The check scope that raises (and so can clear) findings of this kind."""
        return SCOPE_OF_KIND[self]


SCOPE_OF_KIND: dict[str, CheckScope] = {
    FindingKind.DATA_DRIFT: CheckScope.DRIFT,
    FindingKind.PREDICTION_DRIFT: CheckScope.DRIFT,
    FindingKind.DATASET_DRIFT: CheckScope.DRIFT,
    FindingKind.EMBEDDING_DRIFT: CheckScope.DRIFT,
    FindingKind.DATA_QUALITY: CheckScope.DATA_QUALITY,
    FindingKind.LATENCY_REGRESSION: CheckScope.PERFORMANCE,
    FindingKind.ERROR_RATE_REGRESSION: CheckScope.PERFORMANCE,
    FindingKind.THROUGHPUT_CHANGE: CheckScope.PERFORMANCE,
    FindingKind.CHANGE_POINT: CheckScope.CHANGE_POINTS,
    FindingKind.QUALITY_DROP: CheckScope.QUALITY,
    FindingKind.ROLLOUT_FAILED: CheckScope.ROLLOUT,
    FindingKind.ROLLOUT_INCONCLUSIVE: CheckScope.ROLLOUT,
}
"""Scope of each kind, keyed by the stored string (a row's `kind` looks it up directly)."""
