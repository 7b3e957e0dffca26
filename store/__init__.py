"""The store: SQLAlchemy tables, migrations, and every query that two components share.

One module per job: the tables (`tables`, `analysis`), the shared vocabulary of the
findings table (`vocabulary`), the dialect-aware insert (`dialect`), and the queries, by
table: rollups, completeness, analysis reads of events, findings, drift cells,
references, leases, dead letters; retention prunes raw events and drift cells.
"""

from .analysis import AnalyzerLease, DriftReference, Finding
from .base import Base, create_engine_for
from .completeness import Completeness, completeness
from .dead_letters import recent_dead_letters
from .dialect import dialect_insert
from .drift_cells import DriftCell, drift_cells, write_cells
from .events_read import (
    EVENT_COLUMNS,
    active_models,
    active_versions,
    first_events,
    labelled_outputs,
    window_events,
)
from .findings import (
    active_findings,
    finding_report_path,
    insert_finding,
    list_findings,
    set_report_path,
    update_finding,
)
from .leases import claim_model, finish_model
from .metadata import metadata
from .migrate import current, downgrade, upgrade
from .references import active_reference, pin_reference, set_reference_path
from .retention import RetentionWorker, prune_drift_cells, prune_raw_events
from .rollups import LatencySummary, MinutePoint, latency_summary, minute_series
from .sketch import bucket_counts, bucket_indexes, merge_into, quantiles
from .tables import DeadLetter, DeliveryRange, Event, HourRollup, Label, MinuteRollup, SdkDrops
from .vocabulary import (
    ACTIVE_STATUSES,
    SCOPE_OF_KIND,
    CheckScope,
    FindingKind,
    FindingStatus,
    Severity,
)

__all__ = [
    "ACTIVE_STATUSES",
    "EVENT_COLUMNS",
    "SCOPE_OF_KIND",
    "AnalyzerLease",
    "Base",
    "CheckScope",
    "Completeness",
    "DeadLetter",
    "DeliveryRange",
    "DriftCell",
    "DriftReference",
    "Event",
    "Finding",
    "FindingKind",
    "FindingStatus",
    "HourRollup",
    "Label",
    "LatencySummary",
    "MinutePoint",
    "MinuteRollup",
    "RetentionWorker",
    "SdkDrops",
    "Severity",
    "active_findings",
    "active_models",
    "active_reference",
    "active_versions",
    "bucket_counts",
    "bucket_indexes",
    "claim_model",
    "completeness",
    "create_engine_for",
    "current",
    "dialect_insert",
    "downgrade",
    "drift_cells",
    "finding_report_path",
    "finish_model",
    "first_events",
    "insert_finding",
    "labelled_outputs",
    "latency_summary",
    "list_findings",
    "merge_into",
    "metadata",
    "minute_series",
    "pin_reference",
    "prune_drift_cells",
    "prune_raw_events",
    "quantiles",
    "recent_dead_letters",
    "set_reference_path",
    "set_report_path",
    "update_finding",
    "upgrade",
    "window_events",
    "write_cells",
]
