"""Request/response bodies of the registry, snapshot, rollout and lineage routes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from inferloop.feedback import JOIN_POLICIES, VersionState

from .params import Nanos

_Text = Field(min_length=1, max_length=200)


class VersionRegister(BaseModel):
    artifact_uri: str = Field(min_length=1, description="Where the trained model is stored.")
    who: str = Field(min_length=1, max_length=200, description="Who registers it (recorded).")
    metrics: dict[str, Any] = Field(default_factory=dict, description="Offline evaluation.")
    metadata: dict[str, Any] = Field(default_factory=dict)
    source_snapshot_uri: str | None = Field(
        default=None, description="The labeled snapshot it was trained on."
    )
    source_snapshot_hash: str | None = Field(
        default=None,
        max_length=128,
        description="That snapshot's content hash: the link the lineage follows.",
    )


class VersionResponse(BaseModel):
    model: str
    version: int = Field(description="Assigned in the registering transaction: 1, 2, 3, …")
    artifact_uri: str
    registered_by: str
    registered_at_ns: int
    metrics: dict[str, Any]
    metadata: dict[str, Any]
    source_snapshot_uri: str | None
    source_snapshot_hash: str | None
    states: dict[str, str] = Field(
        default_factory=dict,
        description="State per environment it was ever moved in; a candidate everywhere else.",
    )


class MoveRequest(BaseModel):
    to: VersionState = Field(description="canary, live, retired or rolled_back.")
    environment: str = _Text
    who: str = _Text
    why: str = Field(min_length=1, description="Recorded in the history.")
    evidence: dict[str, Any] = Field(default_factory=dict)


class MoveResponse(BaseModel):
    model: str
    version: int
    environment: str | None = Field(description="None for the registration.")
    from_state: str | None
    to_state: str
    who: str
    why: str
    evidence: dict[str, Any]
    at_ns: int


class MovesMade(BaseModel):
    moves: list[MoveResponse] = Field(
        description="Every move made, the automatic ones too (the live version retired, or "
        "the replaced one restored by a rollback)."
    )
    redeploy_request_id: str | None = Field(
        default=None, description="A move to canary queues a redeploy request: its event id."
    )
    redeploy_destinations: list[str] = Field(
        default_factory=list,
        description="Where that request was queued (none when no destination is configured).",
    )


class LiveAtResponse(BaseModel):
    model: str
    environment: str
    at_ns: int
    version: int | None = Field(description="The version live then; null if none was.")


class SnapshotExport(BaseModel):
    start_ns: Nanos = Field(description="Predictions started from here (Unix ns)…")
    end_ns: Nanos = Field(description="…to before here.")
    label_as_of_ns: Nanos | None = Field(
        default=None, description="Labels received by then count; default now."
    )
    versions: list[str] | None = Field(default=None, min_length=1, description="Default: all.")
    join_policy: str = Field(default="latest", description=f"One of {', '.join(JOIN_POLICIES)}.")
    include_unlabeled: bool = False
    destination: str | None = Field(
        default=None,
        description="A directory or object-store URL; default: the server's snapshots folder.",
    )


class SnapshotResponse(BaseModel):
    uri: str
    content_hash: str
    manifest: dict[str, Any]


class SnapshotSummary(BaseModel):
    uri: str
    content_hash: str
    model: str | None
    versions: list[str] | None
    row_count: int | None
    labeled_count: int | None
    label_as_of_ns: int | None
    created_at_ns: int | None
    time_range: dict[str, Any] | None


class SnapshotVerified(BaseModel):
    uri: str
    verified: bool = Field(description="Always true: a mismatch is a 409.")
    content_hash: str
    row_count: int
    manifest: dict[str, Any]


class RolloutCheckResponse(BaseModel):
    environment: str
    candidate_version: int
    live_version: int | None
    check_number: int
    at_ns: int
    window_start_ns: int
    window_end_ns: int
    outcome: str = Field(description="pass, fail or inconclusive.")
    reason: str
    evidence: dict[str, Any] = Field(
        description="The decision (statistics and e-values per metric) and the counts."
    )


class RetrainAsk(BaseModel):
    """A retrain asked for by hand: a snapshot as of now, and a request that points at it."""

    reason: str = Field(min_length=1, description="Why: it goes into the request's evidence.")
    who: str = Field(default="api", min_length=1, description="Who asks (audit).")
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        description="The same key is the same request: a retry queues nothing new.",
    )
    versions: list[str] | None = Field(
        default=None, description="Versions whose traffic goes into the snapshot; default all."
    )
    snapshot_window_s: float = Field(
        default=30 * 86_400.0, gt=0, description="How far back the snapshot reaches."
    )


class RetrainQueued(BaseModel):
    event_id: str = Field(description="The CloudEvent id: a hash of the decision.")
    queued: bool = Field(description="False when this decision had been queued before.")
    destinations: list[str]
    event: dict[str, Any] = Field(description="The CloudEvent as the destinations receive it.")


class FeedbackRequestResponse(BaseModel):
    event_id: str = Field(description="The CloudEvent id: a hash of the decision.")
    destination: str
    type: str
    subject: str
    model: str
    state: str = Field(description="pending, delivered or dead.")
    attempts: int
    created_at_ns: int
    next_attempt_ns: int
    delivered_at_ns: int | None
    last_error: str | None


class Delivery(BaseModel):
    destination: str
    state: str
    attempts: int
    delivered_at_ns: int | None
    last_error: str | None


class LineageRequest(BaseModel):
    id: str = Field(description="The CloudEvent id.")
    type: str
    subject: str
    time: str | None
    created_at_ns: int
    data: dict[str, Any]
    deliveries: list[Delivery]


class LineageSnapshot(BaseModel):
    uri: str | None
    content_hash: str | None
    rows: int | None = None
    label_as_of_ns: int | None = None


class LineageRetrain(LineageRequest):
    finding_ids: list[int]
    snapshot: LineageSnapshot


class LineageFinding(BaseModel):
    id: int
    model: str
    version: str | None
    kind: str
    subject: str
    severity: str
    status: str
    title: str
    first_seen_ns: int
    opened_at_ns: int | None
    evidence: dict[str, Any]


class LineageCheck(BaseModel):
    environment: str
    check_number: int
    live_version: int | None
    at_ns: int
    window_start_ns: int
    window_end_ns: int
    outcome: str
    reason: str
    evidence: dict[str, Any]


class LineageMove(BaseModel):
    environment: str | None
    from_state: str | None
    to_state: str
    who: str
    why: str
    at_ns: int
    evidence: dict[str, Any]


class LineageVersion(BaseModel):
    model: str
    version: int
    artifact_uri: str
    registered_by: str
    registered_at_ns: int
    metrics: dict[str, Any]
    snapshot: LineageSnapshot
    retrain_request_ids: list[str]
    redeploy_requests: list[LineageRequest]
    rollout_checks: list[LineageCheck]
    rollback_requests: list[LineageRequest]
    promote_requests: list[LineageRequest] = Field(default_factory=list)
    moves: list[LineageMove]


class LineageResponse(BaseModel):
    subject: dict[str, Any] = Field(description="What was asked: a finding, or a model version.")
    findings: list[LineageFinding]
    retrain_requests: list[LineageRetrain]
    versions: list[LineageVersion]
