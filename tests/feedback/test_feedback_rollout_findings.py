"""What reaches on-call from the guarded rollout, on both back ends and virtual time: a
rollback writes a critical finding that the alert engine notifies and that resolves when a
later candidate is promoted; a canary inconclusive for `max_checks` is paused (a warning,
once), extended or rolled back, as the policy says."""

from __future__ import annotations

import pytest
from chain import (
    CANARY_AT,
    INTERVAL_S,
    MODEL,
    PROD,
    SECOND,
    Clock,
    add_events,
    guard,
    live_v1,
)

from inferloop.alerts import AlertEvaluator, load_config
from inferloop.feedback import (
    ROLLBACK_REQUESTED,
    InconclusivePolicy,
    RolloutWorker,
    VersionState,
    move_version,
    register_version,
    start_canary,
    version_states,
)
from inferloop.store.feedback_queries import feedback_requests, rollout_checks
from inferloop.store.findings import list_findings

ALERTING = load_config(
    """
rules:
  - name: rollouts
    matchers: ['kind=~"rollout_.*"']
route:
  receiver: oncall
  group_by: [model, kind]
  group_wait: 0s
receivers:
  - name: oncall
    type: webhook
    url: http://127.0.0.1:9/
    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
"""
)
WINDOW = INTERVAL_S * SECOND


def canary(engine, at: int) -> int:
    """Register the next version and put it in canary at `at`."""
    with engine.begin() as connection:
        version = register_version(
            connection, MODEL, artifact_uri="s3://m/next", who="ci", now_ns=at - SECOND
        ).version
    with engine.begin() as connection:
        start_canary(
            connection,
            MODEL,
            version,
            environment=PROD,
            who="ci",
            why="retrained",
            now_ns=at,
            destinations=["hook"],
        )
    return version


def traffic(engine, version: int, at: int, intervals: int, *, slow: float = 1.0) -> None:
    for k in range(intervals):
        add_events(engine, 1, at + k * WINDOW, 600)
        add_events(engine, version, at + k * WINDOW, 600, slow=slow)


def worker(engine, clock: Clock, **options) -> RolloutWorker:
    return RolloutWorker(
        engine, destinations=["hook"], guard=guard, interval_s=INTERVAL_S, clock=clock, **options
    )


def findings(engine, *statuses: str) -> list:
    with engine.connect() as connection:
        rows = list_findings(connection, model=MODEL, statuses=statuses or ("open", "resolved"))
    return [row for row in rows if row.kind.startswith("rollout_")]


def state_of(engine, version: int) -> str:
    with engine.connect() as connection:
        states = version_states(connection, MODEL, environment=PROD)
    return next(str(s.state) for s in states if s.version == version)


def after(at: int, intervals: int) -> int:
    return at + intervals * WINDOW + 31 * SECOND


def test_a_rollback_writes_a_critical_finding_that_on_call_is_notified_of(migrated_engine):
    live_v1(migrated_engine)
    v2 = canary(migrated_engine, CANARY_AT)
    traffic(migrated_engine, v2, CANARY_AT, 3, slow=1.3)
    clock = Clock(after(CANARY_AT, 3))
    steps = worker(migrated_engine, clock).run_once()
    last = steps[-1]
    assert last.action == "rolled_back" and last.finding_id is not None
    [finding] = findings(migrated_engine)
    assert finding.id == last.finding_id
    assert (finding.kind, finding.severity, finding.status) == (
        "rollout_failed",
        "critical",
        "open",
    )
    assert (finding.version, finding.subject) == (str(v2), PROD)
    assert finding.evidence["decision"]["outcome"] == "fail"
    assert finding.evidence["rollback_request_id"] == last.request_id
    assert "latency_exceedance" in finding.title
    assert worker(migrated_engine, clock).run_once() == []  # once: nothing more to write
    assert len(findings(migrated_engine)) == 1

    evaluator = AlertEvaluator(migrated_engine, ALERTING, clock=clock)
    [notification] = evaluator.evaluate_once()
    assert str(notification.status) == "firing"
    [alert] = notification.alerts
    assert alert.labels["kind"] == "rollout_failed" and alert.labels["severity"] == "critical"
    assert alert.annotations["finding_id"] == finding.id


def test_the_failure_resolves_when_a_later_candidate_is_promoted(migrated_engine):
    live_v1(migrated_engine)
    v2 = canary(migrated_engine, CANARY_AT)
    traffic(migrated_engine, v2, CANARY_AT, 3, slow=1.3)
    clock = Clock(after(CANARY_AT, 3))
    worker(migrated_engine, clock).run_once()
    [failed] = findings(migrated_engine, "open")

    second_at = CANARY_AT + 10 * WINDOW
    v3 = canary(migrated_engine, second_at)  # no traffic in its first window yet
    clock.now = after(second_at, 1)
    [waiting] = worker(migrated_engine, clock).run_once()
    assert waiting.action == "waiting"
    assert [f.id for f in findings(migrated_engine, "open")] == [failed.id]  # not yet

    traffic(migrated_engine, v3, second_at + WINDOW, 3)
    clock.now = after(second_at, 4)
    steps = worker(migrated_engine, clock).run_once()
    assert steps[-1].action == "promoted" and state_of(migrated_engine, v3) == "live"
    [resolved] = findings(migrated_engine)
    assert (resolved.id, resolved.status, resolved.resolved_at_ns) == (
        failed.id,
        "resolved",
        clock.now,
    )
    evaluator = AlertEvaluator(migrated_engine, ALERTING, clock=clock)
    assert evaluator.evaluate_once() == []  # resolved before it was ever evaluated: quiet


def test_a_long_inconclusive_canary_is_paused_with_one_warning(migrated_engine):
    live_v1(migrated_engine)
    v2 = canary(migrated_engine, CANARY_AT)  # no traffic at all: every check inconclusive
    clock = Clock(after(CANARY_AT, 5))
    steps = worker(migrated_engine, clock, max_checks=3).run_once()
    assert [s.action for s in steps] == ["waiting", "waiting", "paused"]
    [paused] = findings(migrated_engine)
    assert (paused.kind, paused.severity, paused.status) == (
        "rollout_inconclusive",
        "warning",
        "open",
    )
    assert paused.evidence["on_inconclusive"] == "pause" and paused.evidence["check_number"] == 3
    clock.now = after(CANARY_AT, 20)
    assert worker(migrated_engine, clock, max_checks=3).run_once() == []  # paused: no checks
    with migrated_engine.connect() as connection:
        assert len(rollout_checks(connection, MODEL, PROD, v2)) == 3
    assert state_of(migrated_engine, v2) == "canary" and len(findings(migrated_engine)) == 1

    with migrated_engine.begin() as connection:  # someone decides by hand
        move_version(
            connection,
            MODEL,
            v2,
            VersionState.LIVE,
            environment=PROD,
            who="ana",
            why="looked fine",
            now_ns=clock.now,
        )
    clock.now += SECOND
    assert worker(migrated_engine, clock, max_checks=3).run_once() == []
    [resolved] = findings(migrated_engine)
    assert resolved.status == "resolved" and resolved.resolved_at_ns == clock.now


def test_extend_keeps_checking_and_writes_nothing(migrated_engine):
    live_v1(migrated_engine)
    v2 = canary(migrated_engine, CANARY_AT)
    clock = Clock(after(CANARY_AT, 5))
    steps = worker(migrated_engine, clock, max_checks=3, on_inconclusive="extend").run_once()
    assert [s.action for s in steps] == ["waiting"] * 5
    assert findings(migrated_engine) == [] and state_of(migrated_engine, v2) == "canary"


def test_rollback_policy_rolls_an_undecided_canary_back_with_a_request(migrated_engine):
    live_v1(migrated_engine)
    v2 = canary(migrated_engine, CANARY_AT)
    clock = Clock(after(CANARY_AT, 5))
    policy = InconclusivePolicy.ROLLBACK
    steps = worker(migrated_engine, clock, max_checks=3, on_inconclusive=policy).run_once()
    assert [s.action for s in steps] == ["waiting", "waiting", "rolled_back"]
    assert state_of(migrated_engine, v2) == "rolled_back"
    with migrated_engine.connect() as connection:
        [rollback] = feedback_requests(connection, model=MODEL, type=ROLLBACK_REQUESTED)
    assert "inconclusive after 3 checks" in rollback["event"]["data"]["reason"]
    [finding] = findings(migrated_engine)
    assert finding.kind == "rollout_failed" and finding.evidence["on_inconclusive"] == "rollback"


def test_the_inconclusive_policy_is_validated():
    with pytest.raises(ValueError):
        RolloutWorker(None, destinations=[], on_inconclusive="wait")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        RolloutWorker(None, destinations=[], max_checks=0)  # type: ignore[arg-type]
