"""The route tester names the receivers a label set reaches and what would stop each."""

from __future__ import annotations

from inferloop.alerts._config import EXAMPLE_CONFIG, load_config
from inferloop.alerts._explain import explain
from inferloop.alerts._model import Alert
from inferloop.alerts._silences import new_silence

S = 1_000_000_000
MONDAY = 4 * 86_400 * S
CONFIG = load_config(EXAMPLE_CONFIG)
CRITICAL_FRAUD = {"model": "fraud", "kind": "latency_regression", "severity": "critical"}


def test_a_label_set_reaches_every_matching_route_and_is_delivered_when_nothing_stops_it() -> None:
    reach = explain(CONFIG, CRITICAL_FRAUD, [], [], MONDAY)
    assert [(r.route_id, r.receiver, r.delivered) for r in reach] == [
        ("root.0", "pagerduty-oncall", True),
        ("root.1", "risk-webhook", True),
    ]
    assert reach[0].group_key == 'root.0:{kind="latency_regression",model="fraud"}'


def test_the_tester_names_the_silence_that_stops_an_alert() -> None:
    silence = new_silence('model="fraud"', starts_at_ns=0, ends_at_ns=MONDAY + S, comment="deploy")
    reach = explain(CONFIG, CRITICAL_FRAUD, [silence], [], MONDAY)
    assert all(r.silenced_by == silence and not r.delivered for r in reach)
    assert explain(CONFIG, CRITICAL_FRAUD, [silence], [], MONDAY + S)[0].delivered


def test_the_tester_names_the_inhibiting_alert_and_the_mute_interval() -> None:
    no_traffic = Alert({"model": "fraud", "version": "v1", "kind": "throughput_change"})
    drift = {"model": "fraud", "version": "v1", "kind": "data_drift"}
    saturday = MONDAY + 5 * 86_400 * S
    (reach,) = explain(CONFIG, drift, [], [no_traffic], saturday)
    assert reach.receiver == "risk-webhook"
    assert reach.inhibited_by is not None and reach.inhibited_by.source == no_traffic
    assert reach.muted_by == ("weekends",) and not reach.delivered
    (other_version,) = explain(CONFIG, {**drift, "version": "v2"}, [], [no_traffic], MONDAY)
    assert other_version.delivered
