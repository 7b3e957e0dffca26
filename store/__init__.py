"""The store: SQLAlchemy tables, migrations, and the queries the services share."""

from .base import Base, create_engine_for
from .metadata import metadata
from .migrate import current, downgrade, upgrade
from .queries import Completeness, LatencySummary, completeness, latency_summary, minute_series
from .retention import RetentionWorker, prune_raw_events
from .sketch import bucket_counts, bucket_indexes, merge_into, quantiles
from .tables import DeadLetter, DeliveryRange, Event, Label, MinuteRollup, SdkDrops

__all__ = [
    "Base",
    "Completeness",
    "LatencySummary",
    "RetentionWorker",
    "DeadLetter",
    "DeliveryRange",
    "Event",
    "Label",
    "MinuteRollup",
    "SdkDrops",
    "bucket_counts",
    "bucket_indexes",
    "completeness",
    "create_engine_for",
    "current",
    "downgrade",
    "latency_summary",
    "merge_into",
    "metadata",
    "minute_series",
    "prune_raw_events",
    "quantiles",
    "upgrade",
]
