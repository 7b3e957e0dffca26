"""One whole loop written through the real feedback functions, for the lineage, API and CLI
tests: a finding → a retrain request (the CloudEvent contract) → a registered version from
its snapshot → canary with its redeploy request → a latency regression the guard rolls back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from inferloop.feedback import (
    RETRAIN_REQUESTED,
    MetricOptions,
    RolloutGuard,
    RolloutWorker,
    VersionState,
    cloud_event,
    enqueue_request,
    move_version,
    register_version,
    start_canary,
)
from inferloop.store import Event, insert_finding

MODEL, PROD = "ranker", "production"
SECOND = 1_000_000_000
MS = 1_000_000
T0 = 1_700_000_000 * SECOND
CANARY_AT = T0 + 3600 * SECOND
INTERVAL_S = 60
SNAPSHOT_HASH = "5e" * 32
SNAPSHOT_URI = f"/data/snapshots/{SNAPSHOT_HASH}"


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@dataclass(frozen=True)
class Chain:
    finding_id: int
    retrain_id: str
    candidate: int
    redeploy_id: str
    rollback_id: str
    checks: int


def add_events(engine, version: int, start_ns: int, count: int, *, slow: float = 1.0) -> None:
    """`count` calls of one version over one interval; latencies 10-20 ms (times `slow`)."""
    step = INTERVAL_S * SECOND // count
    rows = [
        {
            "event_id": uuid.uuid4().hex,
            "emitter_id": "test",
            "seq": i,
            "model": MODEL,
            "version": str(version),
            "environment": PROD,
            "start_time_ns": start_ns + i * step,
            "latency_ns": int((10 * MS + (i * 37 % 100) * MS // 10) * slow),
            "device_time_ns": None,
            "status": "ok",
            "error_type": None,
            "error_message": None,
            "batch_size": 1,
            "device": "cpu",
            "inputs": None,
            "outputs": {"rows": [{"value": 1}]},
            "prediction_id": f"{version}-{start_ns}-{i}",
            "tags": {},
            "received_at_ns": start_ns,
        }
        for i in range(count)
    ]
    with engine.begin() as connection:
        connection.execute(sa.insert(Event.__table__), rows)


def add_finding(engine, *, at: int = T0 + 1800 * SECOND, model: str = MODEL) -> int:
    with engine.begin() as connection:
        return insert_finding(
            connection,
            {
                "fingerprint": uuid.uuid4().hex,
                "model": model,
                "version": "1",
                "kind": "data_drift",
                "subject": "age",
                "severity": "critical",
                "status": "open",
                "title": "age drifted",
                "evidence": {"psi": 0.4},
                "window_start_ns": at - 3600 * SECOND,
                "window_end_ns": at,
                "first_seen_ns": at,
                "last_seen_ns": at,
                "opened_at_ns": at,
                "occurrences": 1,
            },
        )


def retrain_request(engine, finding_ids: list[int], *, at: int) -> str:
    """A retrain request in the contract's shape, through the real outbox."""
    event = cloud_event(
        RETRAIN_REQUESTED,
        subject=MODEL,
        decision={"model": MODEL, "environment": PROD, "finding_ids": finding_ids},
        data={
            "model": MODEL,
            "environment": PROD,
            "trigger": "policy",
            "reason": "critical data_drift and 500 new labeled rows",
            "requested_by": "retrain-policy",
            "finding_ids": finding_ids,
            "new_labeled_rows": 500,
            "snapshot": {
                "uri": SNAPSHOT_URI,
                "content_hash": SNAPSHOT_HASH,
                "rows": 500,
                "label_as_of_ns": at,
            },
        },
        time_ns=at,
    )
    with engine.begin() as connection:
        enqueue_request(connection, event, model=MODEL, destinations=["hook", "kafka"], now_ns=at)
    return event["id"]


def live_v1(engine) -> None:
    """v1 registered and live at T0, with an hour of traffic before the canary."""
    with engine.begin() as connection:
        register_version(connection, MODEL, artifact_uri="s3://m/1", who="ci", now_ns=T0)
    for to in (VersionState.CANARY, VersionState.LIVE):
        with engine.begin() as connection:
            move_version(
                connection, MODEL, 1, to, environment=PROD, who="ops", why="first", now_ns=T0
            )
    for minute in range(60):
        add_events(engine, 1, T0 + minute * INTERVAL_S * SECOND, 50)


def guard() -> RolloutGuard:
    options = MetricOptions(min_effect=0.05, min_samples=200, budget=1000)
    return RolloutGuard(alpha=0.05, error_rate=options, latency=options, accuracy=None)


def whole_chain(engine) -> Chain:
    """The loop from a finding to a rolled-back candidate (v2), on `engine`."""
    live_v1(engine)
    finding_id = add_finding(engine)
    retrain_id = retrain_request(engine, [finding_id], at=CANARY_AT - 60 * SECOND)
    with engine.begin() as connection:
        candidate = register_version(
            connection,
            MODEL,
            artifact_uri="s3://m/2",
            who="trainer",
            now_ns=CANARY_AT - SECOND,
            metrics={"accuracy": 0.93},
            source_snapshot_uri=SNAPSHOT_URI,
            source_snapshot_hash=SNAPSHOT_HASH,
        ).version
    with engine.begin() as connection:
        _, redeploy = start_canary(
            connection,
            MODEL,
            candidate,
            environment=PROD,
            who="ci",
            why="retrained",
            now_ns=CANARY_AT,
            destinations=["hook"],
            verdict={"accuracy": 0.93},
        )
    for k in range(3):
        start = CANARY_AT + k * INTERVAL_S * SECOND
        add_events(engine, 1, start, 600)
        add_events(engine, candidate, start, 600, slow=1.3)
    clock = Clock(CANARY_AT + 3 * INTERVAL_S * SECOND + 31 * SECOND)
    worker = RolloutWorker(
        engine, destinations=["hook"], guard=guard, interval_s=INTERVAL_S, clock=clock
    )
    steps = worker.run_once()
    assert steps and steps[-1].request_id, "the candidate should have been rolled back"
    return Chain(
        finding_id, retrain_id, candidate, redeploy["id"], steps[-1].request_id, len(steps)
    )
