"""Drift, performance regressions, label-based quality and change points -> findings.

Pure functions over frames at the core (`compute_drift`, `compare_performance`,
`compare_quality`, `detect_change_points`, `data_quality`, `embedding_drift`); one class
per check on the `Check` interface (`DriftCheck`, `DataQualityCheck`, `PerformanceCheck`,
`ChangePointCheck`, `LabelQualityCheck`); store reads, finding writes and report files at
the edge (`AnalyzerWorker`, `render_drift_report`). The SQL is in `inferloop.store`;
`list_findings`, `finding_report_path` and `active_reference` are re-exported from it.
"""

from inferloop.store.findings import finding_report_path, list_findings
from inferloop.store.references import active_reference

from ._calibration import FalseAlarmRate, false_alarm_rate
from ._changepoint import ChangePoint, cusum, detect_change_points, page_hinkley
from ._check_drift import DataQualityCheck, DriftCheck
from ._check_labels import LabelQualityCheck
from ._check_performance import ChangePointCheck, PerformanceCheck
from ._checks import Check, CheckContext, CheckResult
from ._config import AnalyzerConfig
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
from ._findings import FindingChange, apply_observations
from ._model_run import default_checks
from ._observations import Observation
from ._payloads import features_frame
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
from ._references import ReferenceDataError, read_table, register_reference
from ._reports import render_drift_report, store_drift_report
from ._samples import ColumnKind, ColumnSample
from ._stattests import (
    StatTest,
    TestResult,
    get_stattest,
    register_stattest,
    registered_stattests,
)
from ._versions import compare_stored_versions
from ._worker import AnalyzerWorker

__all__ = [
    "AnalyzerConfig",
    "AnalyzerWorker",
    "ChangePoint",
    "ChangePointCheck",
    "Check",
    "CheckContext",
    "CheckResult",
    "ColumnDrift",
    "ColumnKind",
    "ColumnSample",
    "DataQualityCheck",
    "DataQualityIssue",
    "DataQualityOptions",
    "DriftCheck",
    "DriftMode",
    "DriftOptions",
    "DriftReport",
    "EmbeddingDrift",
    "FalseAlarmRate",
    "FindingChange",
    "LabelQualityCheck",
    "Observation",
    "PerfCheck",
    "PerfOptions",
    "PerfWindow",
    "PerformanceCheck",
    "QualityOptions",
    "ReferenceDataError",
    "ReferenceProfile",
    "StatTest",
    "TestResult",
    "VersionComparison",
    "active_reference",
    "alarming_columns",
    "apply_observations",
    "classification_metrics",
    "compare_performance",
    "compare_quality",
    "compare_stored_versions",
    "compare_versions",
    "compute_drift",
    "cusum",
    "data_quality",
    "default_checks",
    "detect_change_points",
    "embedding_drift",
    "embedding_frame",
    "embedding_profile",
    "false_alarm_rate",
    "features_frame",
    "finding_report_path",
    "get_stattest",
    "holm_adjusted",
    "infer_kinds",
    "list_findings",
    "page_hinkley",
    "read_table",
    "register_reference",
    "register_stattest",
    "registered_stattests",
    "regression_metrics",
    "render_drift_report",
    "roc_auc",
    "select_stattest",
    "store_drift_report",
]
