"""The alerting configuration: YAML validated at start, errors that name the line, rules."""

from __future__ import annotations

import pytest

from inferloop.alerts._config import EXAMPLE_CONFIG, ConfigError, load_config
from inferloop.alerts._routing import (
    GROUP_INTERVAL_NS,
    GROUP_WAIT_NS,
    REPEAT_INTERVAL_NS,
    match_routes,
)
from inferloop.alerts._rules import alert_from_finding, finding_labels
from inferloop.alerts._time_intervals import mute_end_ns, muted

S = 1_000_000_000


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_the_example_config_loads_with_alertmanagers_defaults_inherited() -> None:
    config = load_config(EXAMPLE_CONFIG)
    routes = config.root.walk()
    assert [r.id for r in routes] == ["root", "root.0", "root.1"]
    assert all(r.group_by == ("kind", "model") for r in routes)
    assert {(r.group_wait_ns, r.group_interval_ns, r.repeat_interval_ns) for r in routes} == {
        (GROUP_WAIT_NS, GROUP_INTERVAL_NS, REPEAT_INTERVAL_NS)
    }
    assert (GROUP_WAIT_NS, GROUP_INTERVAL_NS, REPEAT_INTERVAL_NS) == (30 * S, 300 * S, 4 * 3600 * S)
    assert [r.name for r in config.receivers] == [
        "slack-ml",
        "pagerduty-oncall",
        "risk-webhook",
        "ml-email",
    ]


def test_an_invalid_value_names_the_line_of_its_key() -> None:
    text = EXAMPLE_CONFIG.replace("group_interval: 5m", "group_interval: 5 minutes")
    with pytest.raises(ConfigError) as caught:
        load_config(text, "alerts.yaml")
    (problem,) = caught.value.problems
    assert problem.line == _line(text, "group_interval:")
    assert problem.path == "route.group_interval"
    assert f"alerts.yaml:line {problem.line}: route.group_interval" in str(caught.value)


def test_errors_deep_in_the_tree_and_in_receivers_name_their_lines() -> None:
    text = (
        EXAMPLE_CONFIG.replace("matchers: ['model=~\"fraud|churn\"']", "matchers: ['model=~\"(\"']")
        .replace("    url: https://risk.example.com", "    url: ftp://risk.example.com")
        .replace("    type: pagerduty\n", "    type: pagerduty\n    colour: red\n")
    )
    with pytest.raises(ConfigError) as caught:
        load_config(text)
    found = {(p.line, p.path) for p in caught.value.problems}
    assert (_line(text, "'model=~\"(\"'"), "route.routes[1].matchers[0]") in found
    assert (_line(text, "colour: red"), "receivers[1].pagerduty.colour") in found
    assert _line(text, "name: risk-webhook") in {p.line for p in caught.value.problems}


def test_unknown_receivers_and_time_intervals_name_the_line_that_uses_them() -> None:
    text = EXAMPLE_CONFIG.replace("receiver: risk-webhook", "receiver: risk-hook").replace(
        "[weekends]", "[weekend]"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(text)
    assert [(p.line, p.path) for p in caught.value.problems] == [
        (_line(text, "receiver: risk-hook"), "route.routes[1].receiver"),
        (_line(text, "[weekend]"), "route.routes[1].mute_time_intervals[0]"),
    ]


def test_yaml_syntax_errors_name_their_line() -> None:
    text = "route:\n  receiver: team\n  group_by: [model\nreceivers: []\n"
    with pytest.raises(ConfigError, match="not valid YAML") as caught:
        load_config(text)
    assert caught.value.problems[0].line is not None


def test_secrets_never_appear_in_errors_or_reprs() -> None:
    text = EXAMPLE_CONFIG.replace(
        "    webhook_url_file: /run/secrets/slack_webhook_url",
        "    webhook_url: http://hooks.slack.com/services/T0/B0/supersecret",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(text)
    assert "supersecret" not in str(caught.value)
    config = load_config(text.replace("http://hooks", "https://hooks"))
    assert "supersecret" not in repr(config)


def test_a_secret_and_its_file_are_mutually_exclusive_and_one_is_required() -> None:
    text = EXAMPLE_CONFIG.replace("    routing_key_file: /run/secrets/pagerduty_routing_key\n", "")
    with pytest.raises(ConfigError, match="exactly one of routing_key or routing_key_file"):
        load_config(text)


def test_the_root_route_needs_a_receiver() -> None:
    text = EXAMPLE_CONFIG.replace("  receiver: slack-ml\n", "", 1)
    with pytest.raises(ConfigError, match="root route needs a receiver"):
        load_config(text)


def test_routing_follows_the_first_match_unless_continue() -> None:
    config = load_config(EXAMPLE_CONFIG)
    reach = lambda **labels: [r.receiver for r in match_routes(config.root, labels)]  # noqa: E731
    assert reach(severity="critical", model="fraud") == ["pagerduty-oncall", "risk-webhook"]
    assert reach(severity="critical", model="ads") == ["pagerduty-oncall"]
    assert reach(severity="warning", model="ads") == ["slack-ml"]


def test_weekday_and_time_intervals_are_read_in_utc() -> None:
    text = EXAMPLE_CONFIG.replace(
        "      - weekdays: ['saturday:sunday']",
        "      - weekdays: ['monday:friday']\n        times: [{start_time: '22:00', end_time: '24:00'}]",
    )
    (interval,) = load_config(text).time_intervals
    monday = 4 * 86_400 * S
    assert not muted([interval], monday + 21 * 3600 * S)
    assert muted([interval], monday + 22 * 3600 * S)
    assert mute_end_ns([interval], monday + 23 * 3600 * S) == monday + 86_400 * S
    saturday = monday + 5 * 86_400 * S
    assert not muted([interval], saturday + 23 * 3600 * S)


FINDING = {
    "id": 7,
    "model": "fraud",
    "version": "v3",
    "kind": "data_drift",
    "subject": "age",
    "severity": "warning",
    "status": "open",
    "title": "fraud v3: feature 'age' drifted (psi)",
    "evidence": {"statistic": 0.31},
    "opened_at_ns": 100 * S,
    "resolved_at_ns": None,
}


def test_a_finding_becomes_an_alert_with_its_labels_and_the_rules_severity() -> None:
    rules = load_config(EXAMPLE_CONFIG).rules
    alert = alert_from_finding(rules, {**FINDING, "environment": "prod"})
    assert alert is not None
    assert alert.labels == {
        "model": "fraud",
        "version": "v3",
        "environment": "prod",
        "kind": "data_drift",
        "subject": "age",
        "severity": "warning",
        "feature": "age",
        "team": "ml",
    }
    assert alert.annotations["evidence"] == {"statistic": 0.31}
    assert alert.annotations["finding_id"] == 7 and alert.annotations["rule"] == "drift"
    assert (alert.starts_at_ns, alert.ends_at_ns) == (100 * S, None)

    latency = {**FINDING, "kind": "latency_regression", "subject": "p99"}
    raised = alert_from_finding(rules, latency)
    assert raised is not None and raised.labels["severity"] == "critical"
    assert "feature" not in raised.labels


def test_findings_no_rule_matches_and_pending_ones_raise_no_alert() -> None:
    rules = load_config(EXAMPLE_CONFIG).rules
    assert alert_from_finding(rules, {**FINDING, "kind": "quality_drop"}) is None
    assert alert_from_finding(rules, {**FINDING, "environment": "staging"}) is None
    assert alert_from_finding(rules, {**FINDING, "status": "pending"}) is None


def test_a_resolved_finding_becomes_a_resolved_alert_with_the_same_fingerprint() -> None:
    rules = load_config(EXAMPLE_CONFIG).rules
    opened = alert_from_finding(rules, FINDING)
    closed = alert_from_finding(rules, {**FINDING, "status": "resolved", "resolved_at_ns": 9 * S})
    assert opened is not None and closed is not None
    assert closed.ends_at_ns == 9 * S and closed.fingerprint == opened.fingerprint


def test_a_data_quality_subject_names_its_feature() -> None:
    labels = finding_labels(
        {**FINDING, "kind": "data_quality", "subject": "age:null_share", "evidence": {}}
    )
    assert labels["feature"] == "age" and labels["subject"] == "age:null_share"


def test_the_readme_shows_the_example_config_that_loads() -> None:
    from pathlib import Path

    from inferloop.alerts._config import EXAMPLE_CONFIG

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert f"```yaml\n{EXAMPLE_CONFIG.rstrip()}\n```" in readme, (
        "README's alerting example differs from alerts._config.EXAMPLE_CONFIG"
    )


def test_without_rules_every_open_finding_alerts_at_its_own_severity() -> None:
    alert = alert_from_finding((), FINDING)
    assert alert is not None and alert.annotations["rule"] == "every-finding"
    assert alert.labels["severity"] == FINDING["severity"]
    assert alert_from_finding((), {**FINDING, "status": "pending"}) is None
