"""Ingest: the Kafka collector and the pipeline the HTTP endpoint shares with it."""

from .contract import SCHEMA_VERSION, Batch, InferenceEvent, LabelEvent
from .metrics import IngestMetrics
from .pipeline import IngestPipeline, IngestResult, InputMessage, StoreUnavailable
from .rejection import Rejection, RejectionCode
from .upserts import write_dead_letters
from .validation import Validated, validate_batch
from .writer import WriteOutcome, write_events

__all__ = [
    "SCHEMA_VERSION",
    "Batch",
    "InferenceEvent",
    "IngestMetrics",
    "IngestPipeline",
    "IngestResult",
    "InputMessage",
    "LabelEvent",
    "Rejection",
    "RejectionCode",
    "StoreUnavailable",
    "Validated",
    "WriteOutcome",
    "run_collector",
    "validate_batch",
    "write_dead_letters",
    "write_events",
]


def __getattr__(name: str):
    # The Kafka consumer needs kafka-python; import it only when asked for.
    if name == "run_collector":
        from .consumer import run_collector

        return run_collector
    raise AttributeError(name)
