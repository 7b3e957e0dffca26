"""Findings in the store reach a receiver through the evaluator, the outbox and the
dispatcher, on both back ends and on virtual time: group_wait first, the resolve at
once whatever the group_interval, silences honoured, two evaluators never both send."""

from __future__ import annotations

import base64

from loopback import serving, webhook_responder

from inferloop.alerts import AlertEvaluator, Dispatcher, build_receivers, load_config
from inferloop.store.alert_state import save_silence
from inferloop.store.findings import insert_finding, update_finding
from inferloop.store.outbox import notifications

NS = 1_000_000_000
T0 = 1_900_000_000 * NS
SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def _config(url: str):
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
"""
    )


class VirtualClock:
    def __init__(self) -> None:
        self.now_ns = T0

    def __call__(self) -> int:
        return self.now_ns

    def advance(self, seconds: float) -> None:
        self.now_ns += int(seconds * NS)


def _open_finding(engine, feature: str, at_ns: int) -> int:
    with engine.begin() as connection:
        return insert_finding(
            connection,
            {
                "fingerprint": f"fp-{feature}",
                "model": "fraud",
                "version": "2",
                "kind": "data_drift",
                "subject": feature,
                "severity": "warning",
                "status": "open",
                "title": f"fraud 2: feature {feature!r} drifted (ks)",
                "evidence": {"stattest": "ks", "p_value": 1e-9, "threshold": 0.05},
                "window_start_ns": at_ns - 900 * NS,
                "window_end_ns": at_ns,
                "first_seen_ns": at_ns,
                "last_seen_ns": at_ns,
                "opened_at_ns": at_ns,
                "occurrences": 2,
            },
        )


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
