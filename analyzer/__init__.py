"""Drift, performance regressions, label-based quality and change points -> findings.

Pure functions over frames at the core (`compute_drift`, `detect_latency_regression`,
...); store reads, finding writes and report files at the edge (`AnalyzerWorker`).
"""

from ._drift import (
    ColumnDrift,
    DriftMode,
    DriftOptions,
    DriftReport,
    alarming_columns,
    compute_drift,
    holm_adjusted,
    select_stattest,
)
from ._profile import ReferenceProfile, infer_kinds
from ._samples import ColumnKind, ColumnSample
from ._stattests import (
    StatTest,
    TestResult,
    get_stattest,
    register_stattest,
    registered_stattests,
)

__all__ = [
    "ColumnDrift",
    "ColumnKind",
    "ColumnSample",
    "DriftMode",
    "DriftOptions",
    "DriftReport",
    "ReferenceProfile",
    "StatTest",
    "TestResult",
    "alarming_columns",
    "compute_drift",
    "get_stattest",
    "holm_adjusted",
    "infer_kinds",
    "register_stattest",
    "registered_stattests",
    "select_stattest",
]
