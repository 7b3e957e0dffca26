"""The guarded rollout on both back ends: a latency regression is rolled back with one
rollback request delivered once; a candidate that does not regress is promoted; duplicate
triggers and a second worker add nothing."""

from __future__ import annotations

import json
import threading
import uuid

import sqlalchemy as sa
from sinks import serving_sink

from inferloop.alerts._webhook import decode_secret, sign
from inferloop.feedback import (
    PROMOTE_REQUESTED,
    REDEPLOY_REQUESTED,
    ROLLBACK_REQUESTED,
    MetricOptions,
    Outcome,
    RequestDispatcher,
    RolloutGuard,
    RolloutWorker,
    VersionState,
    WebhookDestination,
    move_version,
    register_version,
    request_redeploy,
    start_canary,
    version_states,
)
from inferloop.store import Event
from inferloop.store.feedback_queries import feedback_requests, rollout_checks

MODEL, PROD = "ranker", "production"
SECOND = 1_000_000_000
MS = 1_000_000
T0 = 1_700_000_000 * SECOND
CANARY_AT = T0 + 3600 * SECOND
INTERVAL_S = 60
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def add_events(engine, version: int, start_ns: int, count: int, *, slow_factor: float = 1.0):
    """`count` calls spread over one interval; latencies 10-20 ms (times `slow_factor`)."""
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
            "latency_ns": int((10 * MS + (i * 37 % 100) * MS // 10) * slow_factor),
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


def guard() -> RolloutGuard:
    options = MetricOptions(min_effect=0.05, min_samples=200, budget=1000)
    return RolloutGuard(alpha=0.05, error_rate=options, latency=options, accuracy=None)


def rollout(engine, clock: Clock, *, slow_factor: float, intervals: int = 3) -> int:
    """v1 live with an hour of baseline traffic; v2 to canary; `intervals` of both arms."""
    with engine.begin() as connection:
        v1 = register_version(connection, MODEL, artifact_uri="s3://m/1", who="ci", now_ns=T0)
    for to in (VersionState.CANARY, VersionState.LIVE):
        with engine.begin() as connection:
            move_version(
                connection,
                MODEL,
                v1.version,
                to,
                environment=PROD,
                who="ops",
                why="first",
                now_ns=T0,
            )
    for minute in range(60):
        add_events(engine, 1, T0 + minute * INTERVAL_S * SECOND, 50)
    with engine.begin() as connection:
        v2 = register_version(
            connection, MODEL, artifact_uri="s3://m/2", who="ci", now_ns=CANARY_AT - SECOND
        )
    with engine.begin() as connection:
        start_canary(
            connection,
            MODEL,
            v2.version,
            environment=PROD,
            who="ci",
            why="retrained",
            now_ns=CANARY_AT,
            destinations=["hook"],
            verdict={"accuracy": 0.91},
        )
    for k in range(intervals):
        start = CANARY_AT + k * INTERVAL_S * SECOND
        add_events(engine, 1, start, 600)
        add_events(engine, v2.version, start, 600, slow_factor=slow_factor)
    clock.now = CANARY_AT + intervals * INTERVAL_S * SECOND + 31 * SECOND
    return v2.version


def worker(engine, clock: Clock) -> RolloutWorker:
    return RolloutWorker(
        engine, destinations=["hook"], guard=guard, interval_s=INTERVAL_S, clock=clock
    )


def states(engine) -> dict[int, VersionState]:
    with engine.connect() as connection:
        return {s.version: s.state for s in version_states(connection, MODEL, environment=PROD)}


def test_latency_regression_is_rolled_back_and_its_request_delivered_once(migrated_engine):
    clock = Clock(T0)
    version = rollout(migrated_engine, clock, slow_factor=1.3)
    steps = worker(migrated_engine, clock).run_once()
    assert [s.decision.outcome for s in steps][-1] is Outcome.FAIL
    assert "latency_exceedance" in steps[-1].decision.reason
    assert states(migrated_engine) == {1: VersionState.LIVE, version: VersionState.ROLLED_BACK}
    with migrated_engine.connect() as connection:
        checks = rollout_checks(connection, MODEL, PROD, version)
    assert checks[-1]["outcome"] == "fail"
    assert checks[0]["evidence"]["slow_above_ns"] == 19_500_000  # live's p95 before the start
    assert checks[-1]["evidence"]["decision"]["metrics"]

    with serving_sink() as sink:
        destination = WebhookDestination(url=sink.url, secrets=[SECRET], clock=lambda: 1.7e9)
        dispatcher = RequestDispatcher(migrated_engine, {"hook": destination}, clock=clock)
        assert dispatcher.run_once() == 2
        assert dispatcher.run_once() == 0
    events = [json.loads(r.body) for r in sink.received]
    assert sorted(e["type"] for e in events) == [REDEPLOY_REQUESTED, ROLLBACK_REQUESTED]
    rollback = next(e for e in events if e["type"] == ROLLBACK_REQUESTED)
    assert rollback["subject"] == f"{MODEL}/{version}"
    assert rollback["id"] == steps[-1].request_id
    assert rollback["data"]["restore_version"] == 1
    assert rollback["specversion"] == "1.0" and rollback["source"] and rollback["time"]
    received = next(r for r in sink.received if json.loads(r.body)["type"] == ROLLBACK_REQUESTED)
    assert received.headers["webhook-id"] == rollback["id"]
    expected = sign([decode_secret(SECRET)], rollback["id"], 1_700_000_000, received.body)
    assert received.headers["webhook-signature"] == expected


def test_candidate_that_does_not_regress_is_promoted(migrated_engine):
    clock = Clock(T0)
    version = rollout(migrated_engine, clock, slow_factor=1.0)
    steps = worker(migrated_engine, clock).run_once()
    assert steps[-1].decision.outcome is Outcome.PASS
    assert all(s.decision.outcome is Outcome.INCONCLUSIVE for s in steps[:-1])
    assert states(migrated_engine) == {1: VersionState.RETIRED, version: VersionState.LIVE}
    with migrated_engine.connect() as connection:
        types = [r["type"] for r in feedback_requests(connection, model=MODEL)]
    assert types == [REDEPLOY_REQUESTED, PROMOTE_REQUESTED]


def test_a_check_waits_for_its_window_to_close(migrated_engine):
    clock = Clock(T0)
    rollout(migrated_engine, clock, slow_factor=1.3)
    clock.now = CANARY_AT + INTERVAL_S * SECOND  # window 1 closed, grace not over
    assert worker(migrated_engine, clock).run_once() == []


def test_duplicate_triggers_and_two_workers_make_one_request_each(migrated_engine):
    clock = Clock(T0)
    version = rollout(migrated_engine, clock, slow_factor=1.3)
    with migrated_engine.begin() as connection:
        again = request_redeploy(
            connection,
            MODEL,
            version,
            environment=PROD,
            destinations=["hook"],
            now_ns=clock.now,
            previous_version=1,
        )
    results: list = []
    workers = [worker(migrated_engine, clock) for _ in range(2)]
    threads = [threading.Thread(target=lambda w=w: results.append(w.run_once())) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert worker(migrated_engine, clock).run_once() == []
    with migrated_engine.connect() as connection:
        rows = feedback_requests(connection, model=MODEL)
        checks = rollout_checks(connection, MODEL, PROD, version)
    assert sorted(r["type"] for r in rows) == [REDEPLOY_REQUESTED, ROLLBACK_REQUESTED]
    assert next(r["id"] for r in rows if r["type"] == REDEPLOY_REQUESTED) == again["id"]
    assert [c["check_number"] for c in checks] == list(range(1, len(checks) + 1))
    assert checks[-1]["outcome"] == "fail"
    assert sum(map(len, results)) == len(checks)  # each check was made by one worker only


def test_a_score_is_read_as_a_class_at_one_half_like_the_analyzer_does():
    from inferloop.feedback._rollout import prediction_matches

    assert prediction_matches(0.8, 1) and prediction_matches(0.2, 0)
    assert not prediction_matches(0.2, 1) and not prediction_matches(0.5, 0)
    assert prediction_matches("fraud", "fraud") and not prediction_matches("ok", "fraud")
    assert not prediction_matches(0.8, 3)  # not a 0/1 label: the score must equal it
