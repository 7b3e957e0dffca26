"""Alert rules through the API: stored ones are listed and evaluated before the file's,
bad ones are refused saying why, and the evaluator honours a new rule at its next pass."""

from __future__ import annotations

import httpx
from serving import served

from inferloop.alerts import AlertEvaluator, load_config
from inferloop.server import create_app
from inferloop.settings import Settings
from inferloop.store.findings import insert_finding

NS = 1_000_000_000
T0 = 1_900_000_000 * NS
CONFIG = """
rules:
  - name: performance
    matchers: ['kind="latency_regression"']
route:
  receiver: oncall
  group_wait: 0s
receivers:
  - name: oncall
    type: webhook
    url: http://127.0.0.1:9/
    secret: whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=
"""


def _drift_finding() -> dict:
    return {
        "fingerprint": "fp-drift",
        "model": "fraud",
        "version": "2",
        "kind": "data_drift",
        "subject": "amount",
        "severity": "warning",
        "status": "open",
        "title": "fraud 2: feature 'amount' drifted (ks)",
        "evidence": {},
        "window_start_ns": T0 - 900 * NS,
        "window_end_ns": T0,
        "first_seen_ns": T0,
        "last_seen_ns": T0,
        "opened_at_ns": T0,
        "occurrences": 2,
    }


def test_a_rule_put_through_the_api_is_listed_first_and_can_be_removed(migrated_engine, tmp_path):
    config = tmp_path / "alerting.yaml"
    config.write_text(CONFIG)
    settings = Settings(data_dir=tmp_path, alerts={"config_file": config})
    with served(create_app(settings, engine=migrated_engine)) as base:
        put = httpx.put(
            f"{base}/v1/alerts/rules/drift-paging",
            json={
                "matchers": ['kind=~".*drift"'],
                "severity": "critical",
                "labels": {"team": "ml"},
            },
        )
        listed = httpx.get(f"{base}/v1/alerts/rules").json()
        bad = httpx.put(f"{base}/v1/alerts/rules/broken", json={"matchers": ["kind=~("]})
        removed = httpx.delete(f"{base}/v1/alerts/rules/drift-paging")
        again = httpx.delete(f"{base}/v1/alerts/rules/drift-paging")
        after = httpx.get(f"{base}/v1/alerts/rules").json()
    assert put.status_code == 200
    assert [(r["name"], r["source"]) for r in listed] == [
        ("drift-paging", "api"),
        ("performance", "file"),
    ]
    assert listed[0]["severity"] == "critical" and listed[0]["labels"] == {"team": "ml"}
    assert bad.status_code == 422 and "invalid rule" in bad.json()["detail"]
    assert (removed.status_code, again.status_code) == (204, 404)
    assert [r["name"] for r in after] == ["performance"]


def test_the_evaluator_alerts_under_a_rule_added_through_the_api(migrated_engine, tmp_path):
    clock = lambda: T0 + 60 * NS  # noqa: E731 - a fixed instant is the whole clock here
    with migrated_engine.begin() as connection:
        insert_finding(connection, _drift_finding())
    evaluator = AlertEvaluator(migrated_engine, load_config(CONFIG), clock=clock)
    assert evaluator.evaluate_once() == []  # the file alerts on latency only
    app = create_app(Settings(data_dir=tmp_path), engine=migrated_engine)
    with served(app) as base:
        answer = httpx.put(
            f"{base}/v1/alerts/rules/drift", json={"matchers": ['kind="data_drift"']}
        )
    assert answer.status_code == 200
    (note,) = evaluator.evaluate_once()
    assert note.alerts[0].labels["feature"] == "amount"
    assert note.alerts[0].annotations["rule"] == "drift"
