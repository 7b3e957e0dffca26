"""Request/response bodies of the API, kept apart from the table models."""

from __future__ import annotations

from pydantic import BaseModel, Field

from inferloop.store.outbox import DeliveryState
from inferloop.store.vocabulary import FindingKind, FindingStatus, Severity

from .params import EventNanos, Nanos


class IngestAccepted(BaseModel):
    stored: int = Field(description="Events and labels newly stored.")
    duplicates: int = Field(description="Events already stored (redelivered); ignored.")


class RejectedInput(BaseModel):
    event_index: int = Field(description="Position in `events`; -1 for the whole body.")
    reason: str
    code: str = Field(
        description="Kind of refusal (too_large, undecodable, invalid, store_refused, ...)."
    )


class IngestRejected(BaseModel):
    detail: str
    rejected: list[RejectedInput] = Field(description="Every refused event (or the whole body).")
    stored: int = Field(
        description="Valid events of the same batch that were stored anyway: only the "
        "`rejected` ones failed, and a resend of the batch reports the stored ones as duplicates."
    )
    duplicates: int


class LatencyResponse(BaseModel):
    model: str
    version: str | None
    start_s: int
    end_s: int
    count: int
    errors: int
    mean_ms: float | None
    max_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    gpu_count: int = Field(description="Calls that measured GPU (device) time.")
    gpu_mean_ms: float | None = Field(description="Mean GPU time of those calls.")
    gpu_max_ms: float | None = Field(description="Longest GPU time of those calls.")


class SeriesPointResponse(BaseModel):
    """One bucket of a series; buckets without calls are left out."""

    start_s: int = Field(description="Bucket start, Unix seconds.")
    step_s: int = Field(description="Bucket length, seconds.")
    count: int
    errors: int
    throughput_per_s: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    gpu_count: int = Field(description="Calls that measured GPU (device) time.")
    gpu_mean_ms: float | None = Field(description="Mean GPU time of those calls.")
    gpu_max_ms: float | None = Field(description="Longest GPU time of those calls.")


class CompletenessResponse(BaseModel):
    model: str
    start_s: float
    end_s: float
    received: int
    lost: int = Field(description="Events missing from emitters' sequence numbers.")
    emitted: int
    received_share: float | None
    sdk_dropped: dict[str, int] = Field(description="Drops the SDK reported, by reason.")
    sdk_dropped_total: int


class DeadLetterResponse(BaseModel):
    id: int
    received_at_ns: int
    source: str
    topic: str | None
    partition: int | None
    offset: int | None
    event_index: int
    reason: str
    raw_size: int
    raw_preview: str = Field(description="First bytes of the raw input, decoded leniently.")


class FindingResponse(BaseModel):
    id: int
    model: str
    version: str | None
    kind: FindingKind = Field(description="What kind of condition was found.")
    subject: str = Field(description="What the finding is about: a feature, a metric.")
    severity: Severity
    status: FindingStatus = Field(description="pending → open → resolved (or pending → dismissed).")
    title: str
    evidence: dict
    window_start_ns: int
    window_end_ns: int
    first_seen_ns: int
    last_seen_ns: int
    opened_at_ns: int | None
    resolved_at_ns: int | None
    occurrences: int
    report_url: str | None = Field(description="The Evidently HTML report, for drift findings.")


class ReferencePinned(BaseModel):
    reference_id: int
    model: str
    version: str | None
    rows: int
    columns: list[str]


class NotificationResponse(BaseModel):
    """One outbox row: a message to one receiver and where its delivery stands."""

    id: str = Field(description="Also the idempotency key the receiver sees (webhook-id …).")
    receiver: str
    group_key: str
    status: str = Field(description="firing | resolved")
    state: DeliveryState
    attempts: int
    created_at_ns: int
    next_attempt_ns: int
    delivered_at_ns: int | None
    last_error: str | None


class DeliveryAttemptResponse(BaseModel):
    attempt: int
    at_ns: int
    outcome: str = Field(description="delivered, retry, permanent, gone or undeliverable.")
    status_code: int | None
    detail: str
    latency_ms: float
    next_attempt_ns: int | None


class ReceiverHealthResponse(BaseModel):
    name: str
    disabled: bool
    disabled_reason: str | None
    last_success_ns: int | None
    last_failure_ns: int | None
    consecutive_failures: int


class SilenceCreate(BaseModel):
    """A new silence: its matchers and its window (an end, or a duration from the start)."""

    matchers: list[str] = Field(
        min_length=1, description='Alertmanager matchers, e.g. `model="fraud"`, `kind=~".*drift"`.'
    )
    starts_at_ns: Nanos | None = Field(None, description="Default: now.")
    ends_at_ns: Nanos | None = Field(None, description="Give this or `duration`.")
    duration: str | None = Field(None, description="`2h`, `90m`, `1h30m`: from the start.")
    comment: str = ""
    created_by: str = ""


class SilenceEdit(BaseModel):
    """Fields to change; a change of matchers expires the silence and creates a new one."""

    matchers: list[str] | None = Field(None, min_length=1)
    ends_at_ns: Nanos | None = None
    duration: str | None = Field(
        None, description="New end, counted from now (or from the start, if it has not begun)."
    )
    comment: str | None = None
    created_by: str | None = None


class SilenceResponse(BaseModel):
    id: str
    matchers: list[str]
    starts_at_ns: int
    ends_at_ns: int
    comment: str
    created_by: str
    state: str = Field(description="pending (not begun), active or expired.")


class AlertRuleBody(BaseModel):
    """Which findings alert: all `matchers` over the finding's labels; first match wins."""

    matchers: list[str] = Field(
        default_factory=list, description='e.g. ["kind=~\\".*drift\\"", "model=\\"fraud\\""]'
    )
    severity: Severity | None = Field(default=None, description="Overrides the finding's.")
    labels: dict[str, str] = Field(default_factory=dict, description="Extra labels for routing.")


class AlertRuleResponse(AlertRuleBody):
    name: str
    source: str = Field(description="api (stored, evaluated first) or file (the config file).")


class LabelIn(BaseModel):
    """One record of POST /v1/labels `{"labels": [...]}` (at most 10,000 per request)."""

    model: str = Field(min_length=1, max_length=200)
    prediction_id: str = Field(max_length=200, description="The prediction this label is for.")
    label: object = Field(description="Any JSON value, at most 256 KiB.")
    time_ns: EventNanos | None = Field(None, description="When the label was known; default: now.")
    label_id: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="The client's id of this label version: a resend is then a duplicate. "
        "Without it the id is derived from (model, prediction_id, time_ns, label).",
    )


class RejectedLabel(BaseModel):
    label_index: int = Field(description="Position in `labels`.")
    reason: str
    code: str


class LabelsAccepted(BaseModel):
    stored: int = Field(description="Label versions newly stored.")
    duplicates: int = Field(description="Already stored (a resend); ignored.")
    rejected: int = Field(description="Records refused (dead-lettered); 0 in a 200 answer.")


class LabelsRejected(LabelsAccepted):
    detail: str
    errors: list[RejectedLabel] = Field(description="Every refused record; the others are stored.")


class VersionLabelsResponse(BaseModel):
    version: str
    predictions: int = Field(description="Predictions started in the window.")
    labeled: int = Field(description="Of those, joined to a label within the join window.")
    coverage: float | None = Field(description="labeled / predictions.")
    past_join_window: int = Field(
        description="Label versions more than the join window after their prediction: "
        "counted here, not joined."
    )
    corrections: int = Field(description="Joined label versions superseded by a later one.")
    revised: bool = Field(description="A label in force is a correction: the figures moved.")
    delay_p50_s: float | None = Field(description="Label time minus prediction start.")
    delay_p95_s: float | None


class ModelLabelsResponse(BaseModel):
    model: str
    start_s: float
    end_s: float
    join_window_s: float
    waiting: int = Field(
        description="Prediction ids labeled in the window whose prediction is not stored yet."
    )
    waiting_past_join_window: int = Field(
        description="Of those, waiting since longer than the join window."
    )
    versions: list[VersionLabelsResponse]
