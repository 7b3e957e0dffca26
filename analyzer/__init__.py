"""Drift, performance regressions, label-based quality and change points -> findings.

Pure functions over frames at the core (`compute_drift`, `compare_performance`,
`compare_quality`, `detect_change_points`, `data_quality`, `embedding_drift`); store
reads, finding writes and report files at the edge (`AnalyzerWorker`, `render_drift_report`).
"""

from ._calibration import FalseAlarmRate, false_alarm_rate
from ._changepoint import ChangePoint, cusum, detect_change_points, page_hinkley
from ._data_quality import DataQualityIssue, DataQualityOptions, data_quality
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
from ._embeddings import EmbeddingDrift, embedding_drift, embedding_frame, embedding_profile
from ._performance import (
    PerfCheck,
    PerfOptions,
    PerfWindow,
    VersionComparison,
    compare_performance,
    compare_versions,
)
from ._profile import ReferenceProfile, infer_kinds
from ._quality import (
    QualityOptions,
    classification_metrics,
    compare_quality,
    regression_metrics,
    roc_auc,
)
from ._samples import ColumnKind, ColumnSample
from ._stattests import (
    StatTest,
    TestResult,
    get_stattest,
    register_stattest,
    registered_stattests,
)

__all__ = [
    "ChangePoint",
    "ColumnDrift",
    "ColumnKind",
    "ColumnSample",
    "DataQualityIssue",
    "DataQualityOptions",
    "DriftMode",
    "DriftOptions",
    "DriftReport",
    "EmbeddingDrift",
    "FalseAlarmRate",
    "PerfCheck",
    "PerfOptions",
    "PerfWindow",
    "QualityOptions",
    "ReferenceProfile",
    "StatTest",
    "TestResult",
    "VersionComparison",
    "alarming_columns",
    "classification_metrics",
    "compare_performance",
    "compare_quality",
    "compare_versions",
    "compute_drift",
    "cusum",
    "data_quality",
    "detect_change_points",
    "embedding_drift",
    "embedding_frame",
    "embedding_profile",
    "false_alarm_rate",
    "get_stattest",
    "holm_adjusted",
    "infer_kinds",
    "page_hinkley",
    "register_stattest",
    "registered_stattests",
    "regression_metrics",
    "roc_auc",
    "select_stattest",
]
