"""Findings in the store reach a receiver through the evaluator, the outbox and the
dispatcher, on both back ends and on virtual time: group_wait first, the resolve at
once whatever the group_interval, silences honoured, two evaluators never both send."""

from __future__ import annotations

import base64
import random

from loopback import Response, serving, webhook_responder

from inferloop.alerts import (
    AlertEvaluator,
    Dispatcher,
    build_rate_limits,
    build_receivers,
    edit_stored_silence,
    expire_stored_silence,
    load_config,
)
from inferloop.store.alert_state import save_silence
from inferloop.store.findings import insert_finding, update_finding
from inferloop.store.outbox import notifications

NS = 1_000_000_000
T0 = 1_900_000_000 * NS
SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def _config(url: str, extra_receiver: str = ""):
    return load_config(
        f"""
rules:
  - name: drift
    matchers: ['kind="data_drift"']
route:
  receiver: oncall
  group_by: [model]
  group_wait: 30s
  group_interval: 5m
receivers:
  - name: oncall
    type: webhook
    url: {url}
    secret: {SECRET}
{extra_receiver}"""
    )


class VirtualClock:
    def __init__(self) -> None:
        self.now_ns = T0

    def __call__(self) -> int:
        return self.now_ns

    def advance(self, seconds: float) -> None:
        self.now_ns += int(seconds * NS)


def _finding_values(model: str, feature: str, at_ns: int) -> dict:
    return {
        "fingerprint": f"fp-{model}-{feature}",
        "model": model,
        "version": "2",
        "kind": "data_drift",
        "subject": feature,
        "severity": "warning",
        "status": "open",
        "title": f"{model} 2: feature {feature!r} drifted (ks)",
        "evidence": {"stattest": "ks", "p_value": 1e-9, "threshold": 0.05},
        "window_start_ns": at_ns - 900 * NS,
        "window_end_ns": at_ns,
        "first_seen_ns": at_ns,
        "last_seen_ns": at_ns,
        "opened_at_ns": at_ns,
        "occurrences": 2,
    }


def _open_finding(engine, feature: str, at_ns: int) -> int:
    with engine.begin() as connection:
        return insert_finding(connection, _finding_values("fraud", feature, at_ns))


def test_a_finding_fires_after_group_wait_and_its_resolve_is_sent_at_once(migrated_engine):
    clock = VirtualClock()
    finding = _open_finding(migrated_engine, "amount", T0)
    with serving(webhook_responder(SECRET)) as sink:
        config = _config(sink.url)
        evaluator = AlertEvaluator(migrated_engine, config, clock=clock)
        dispatcher = Dispatcher(migrated_engine, build_receivers(config), clock=clock)

        assert evaluator.evaluate_once() == []  # waiting group_wait
        clock.advance(30)
        (fired,) = evaluator.evaluate_once()
        assert dispatcher.run_once() == 1

        clock.advance(10)  # well inside the 5 minute group_interval
        with migrated_engine.begin() as connection:
            update_finding(connection, finding, {"status": "resolved", "resolved_at_ns": clock()})
        (resolved,) = evaluator.evaluate_once()
        assert dispatcher.run_once() == 1
        assert evaluator.evaluate_once() == []  # nothing more to say

    bodies = [r.json() for r in sink.requests]
    assert [b["status"] for b in bodies] == ["firing", "resolved"]
    assert [r.headers["webhook-id"] for r in sink.requests] == [fired.id, resolved.id]
    assert bodies[0]["alerts"][0]["labels"]["feature"] == "amount"
    assert bodies[0]["alerts"][0]["annotations"]["finding_id"] == finding


def test_a_silenced_finding_sends_nothing_until_the_silence_ends(migrated_engine):
    clock = VirtualClock()
    with migrated_engine.begin() as connection:
        save_silence(
            connection,
            {
                "id": "maintenance",
                "matchers": ['model="fraud"'],
                "starts_at_ns": T0,
                "ends_at_ns": T0 + 600 * NS,
                "comment": "retraining",
                "created_by": "ana",
            },
            now_ns=T0,
        )
    _open_finding(migrated_engine, "amount", T0)
    evaluator = AlertEvaluator(migrated_engine, _config("http://127.0.0.1:9/"), clock=clock)
    for _ in range(19):
        clock.advance(30)
        assert evaluator.evaluate_once() == []
    clock.advance(60)  # the silence is over: the alert is news now, so group_wait applies
    sent = evaluator.evaluate_once()
    clock.advance(30)
    sent += evaluator.evaluate_once()
    assert [note.status for note in sent] == ["firing"]


def _silence_fraud(engine, *, minutes: int) -> None:
    with engine.begin() as connection:
        save_silence(
            connection,
            {
                "id": "maintenance",
                "matchers": ['model="fraud"'],
                "starts_at_ns": T0,
                "ends_at_ns": T0 + minutes * 60 * NS,
                "comment": "retraining",
                "created_by": "ana",
            },
            now_ns=T0,
        )


def test_a_silence_expired_early_lets_the_alert_through_after_group_wait(migrated_engine):
    clock = VirtualClock()
    _silence_fraud(migrated_engine, minutes=60)
    _open_finding(migrated_engine, "amount", T0)
    evaluator = AlertEvaluator(migrated_engine, _config("http://127.0.0.1:9/"), clock=clock)
    clock.advance(60)
    assert evaluator.evaluate_once() == []  # silenced
    with migrated_engine.begin() as connection:
        expire_stored_silence(connection, "maintenance", now_ns=clock())
    assert evaluator.evaluate_once() == []  # visible now: news, so group_wait first
    clock.advance(30)
    assert [note.status for note in evaluator.evaluate_once()] == ["firing"]


def test_a_silence_narrowed_by_an_edit_stops_muting_what_it_no_longer_matches(migrated_engine):
    clock = VirtualClock()
    _silence_fraud(migrated_engine, minutes=60)
    _open_finding(migrated_engine, "amount", T0)
    evaluator = AlertEvaluator(migrated_engine, _config("http://127.0.0.1:9/"), clock=clock)
    clock.advance(60)
    assert evaluator.evaluate_once() == []
    with migrated_engine.begin() as connection:  # expires "maintenance", stores a successor
        edit_stored_silence(
            connection, "maintenance", now_ns=clock(), matchers=['feature="income"']
        )
    evaluator.evaluate_once()
    clock.advance(30)
    (fired,) = evaluator.evaluate_once()
    assert fired.status == "firing" and fired.alerts[0].labels["feature"] == "amount"


def test_evaluators_share_the_core_state_through_the_store_and_never_resend(migrated_engine):
    clock = VirtualClock()
    _open_finding(migrated_engine, "amount", T0)
    config = _config("http://127.0.0.1:9/")
    first, second = (AlertEvaluator(migrated_engine, config, clock=clock) for _ in range(2))
    first.evaluate_once()
    clock.advance(30)
    sent = first.evaluate_once() + second.evaluate_once() + first.evaluate_once()
    with migrated_engine.connect() as connection:
        queued = notifications(connection)
    assert len(sent) == 1
    assert [row.id for row in queued] == [sent[0].id]


def _paced_responder(clock: VirtualClock, secret: str, min_gap_s: float, down_until_ns: int = 0):
    """A receiver that answers 503 until `down_until_ns`, then enforces one message every
    `min_gap_s` (429 with Retry-After otherwise), both on the test's virtual clock."""
    verify = webhook_responder(secret)
    accepted: list[tuple[int, str]] = []
    refused: list[int] = []

    def respond(request):
        now = clock()
        if now < down_until_ns:
            return Response(503, "down for maintenance")
        if accepted and now - accepted[-1][0] < min_gap_s * NS:
            refused.append(now)
            return Response(429, "rate limited", {"Retry-After": str(min_gap_s)})
        answer = verify(request)
        if answer.status < 300:
            accepted.append((now, request.headers["webhook-id"]))
        return answer

    respond.accepted, respond.refused = accepted, refused
    return respond


def _drain(dispatcher, engine, clock, *, step_s: float, limit: int = 2000) -> None:
    for _ in range(limit):
        dispatcher.run_once()
        with engine.connect() as connection:
            if not notifications(connection, states=["pending"]):
                return
        clock.advance(step_s)
    raise AssertionError("the outbox did not drain")


def test_a_burst_of_100_findings_is_grouped_and_paced_without_a_single_429(migrated_engine):
    clock = VirtualClock()
    for model in range(10):
        for feature in range(10):
            with migrated_engine.begin() as connection:
                values = _finding_values(f"m{model}", f"f{feature}", T0)
                insert_finding(connection, values)
    responder = _paced_responder(clock, SECRET, min_gap_s=1.0)
    with serving(responder) as sink:
        config = _config(sink.url, extra_receiver="    max_per_minute: 60\n")
        evaluator = AlertEvaluator(migrated_engine, config, clock=clock)
        limits = build_rate_limits(config, clock=lambda: clock() / NS)
        dispatcher = Dispatcher(
            migrated_engine, build_receivers(config), clock=clock, rate_limits=limits
        )
        evaluator.evaluate_once()
        clock.advance(30)
        assert len(evaluator.evaluate_once()) == 10  # one message per model
        _drain(dispatcher, migrated_engine, clock, step_s=0.25)
    assert len(sink.requests) == 10 and responder.refused == []
    assert sorted(len(r.json()["alerts"]) for r in sink.requests) == [10] * 10


def test_a_receiver_down_for_a_minute_gets_each_notification_exactly_once(migrated_engine):
    clock = VirtualClock()
    for model in ("fraud", "churn", "ranker"):
        with migrated_engine.begin() as connection:
            insert_finding(connection, _finding_values(model, "amount", T0))
    responder = _paced_responder(clock, SECRET, min_gap_s=0.0, down_until_ns=T0 + 90 * NS)
    with serving(responder) as sink:
        config = _config(sink.url)
        evaluator = AlertEvaluator(migrated_engine, config, clock=clock)
        dispatcher = Dispatcher(
            migrated_engine, build_receivers(config), clock=clock, rng=random.Random(3)
        )
        evaluator.evaluate_once()
        clock.advance(30)
        queued = {note.id for note in evaluator.evaluate_once()}
        _drain(dispatcher, migrated_engine, clock, step_s=1.0)
    assert len(queued) == 3 and len(sink.requests) > 3  # it was down: they were retried
    assert sorted(i for _, i in responder.accepted) == sorted(queued)  # each once
    assert min(t for t, _ in responder.accepted) >= T0 + 90 * NS
    with migrated_engine.connect() as connection:
        rows = notifications(connection)
    assert {row.id for row in rows if row.state == "delivered"} == queued
    assert all(row.attempts >= 2 for row in rows)  # each failed at least once, then landed
