"""`inferloop alerts check|route|test` and `inferloop silences …`, called as a user would."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest
from loopback import Response, serving, slack_responder, webhook_responder

from inferloop.alerts import stored_silences
from inferloop.alerts._config import EXAMPLE_CONFIG
from inferloop.app.cli import main
from inferloop.store.findings import insert_finding

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
SLACK_TOKEN = "T0001/B0001/verysecrettoken123"
NS = 1_000_000_000

CONFIG = """\
rules:
  - name: traffic
    matchers: ['kind="throughput_change"']
  - name: drift
    matchers: ['kind="data_drift"']
route:
  receiver: oncall
  group_by: [model]
  routes:
    - matchers: ['team="quiet"']
      receiver: oncall
      mute_time_intervals: [always]
inhibit_rules:
  - source_matchers: ['kind="throughput_change"']
    target_matchers: ['kind="data_drift"']
    equal: [model]
time_intervals:
  - name: always
    time_intervals: [{{}}]
receivers:
  - name: oncall
    type: webhook
    url: {url}
    secret: {secret}
  - name: chat
    type: slack
    webhook_url_file: {slack_url_file}
  - name: unreadable
    type: webhook
    url: {url}
    secret_file: {missing}
"""


@pytest.fixture
def config_file(tmp_path: Path):
    """Write CONFIG pointing at the given sink URLs; returns the file."""

    def write(
        url: str = "http://127.0.0.1:9/hook", slack_url: str = "http://127.0.0.1:9/s"
    ) -> Path:
        # A file, as in production; it also lets the Slack URL be plain http on loopback.
        slack_url_file = tmp_path / "slack_webhook_url"
        slack_url_file.write_text(slack_url + "\n")
        path = tmp_path / "alerting.yaml"
        path.write_text(
            CONFIG.format(
                url=url,
                secret=SECRET,
                slack_url_file=slack_url_file,
                missing=tmp_path / "no-such-secret",
            )
        )
        return path

    return write


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- alerts check


def test_check_summarises_a_valid_config(tmp_path, capsys) -> None:
    path = tmp_path / "example.yaml"
    path.write_text(EXAMPLE_CONFIG)
    code, out, _ = _run(capsys, "alerts", "check", path, "--syntax-only")
    assert code == 0
    assert f"{path}: valid" in out
    assert "rules: 2" in out and "routes: 3 (the root and 2 below it)" in out
    assert "receivers: 4: slack-ml (slack), pagerduty-oncall (pagerduty)" in out


def test_check_prints_every_problem_with_its_line_and_exits_2(tmp_path, capsys) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "route:\n"
        "  receiver: oncall\n"
        "  group_wait: soon\n"
        "receivers:\n"
        "  - name: oncall\n"
        "    type: webhook\n"
        "    url: https://example.com/hook\n"
        "    secret: whsec_c2VjcmV0\n"
        "    colour: red\n"
    )
    code, out, err = _run(capsys, "alerts", "check", path)
    assert code == 2 and out == ""
    assert "problem(s):" in err
    assert f"{path}:3: route.group_wait: invalid duration 'soon'" in err
    assert f"{path}:9: " in err and "colour" in err


def test_check_reads_the_configured_file_by_default_and_says_when_there_is_none(
    tmp_path, capsys, monkeypatch
) -> None:
    code, _, err = _run(capsys, "alerts", "check")
    assert code == 2 and "INFERLOOP_ALERTS__CONFIG_FILE" in err
    path = tmp_path / "example.yaml"
    path.write_text(EXAMPLE_CONFIG)
    monkeypatch.setenv("INFERLOOP_ALERTS__CONFIG_FILE", str(path))
    code, out, _ = _run(capsys, "alerts", "check", "--syntax-only")
    assert code == 0 and f"{path}: valid" in out


def test_check_builds_each_receiver_so_a_missing_secret_file_fails_as_the_start_would(
    config_file, capsys
) -> None:
    path = config_file()
    code, out, err = _run(capsys, "alerts", "check", path)
    assert code == 2 and out == ""
    assert "receiver 'unreadable'" in err and "no-such-secret" in err
    assert "'oncall'" not in err and "'chat'" not in err
    assert SECRET not in err
    code, out, _ = _run(capsys, "alerts", "check", path, "--syntax-only")
    assert code == 0 and "receivers: 3: oncall (webhook), chat (slack), unreadable (webhook)" in out


def test_check_of_a_missing_file_is_a_message_not_a_traceback(tmp_path, capsys) -> None:
    code, _, err = _run(capsys, "alerts", "check", tmp_path / "nope.yaml")
    assert code == 2 and "cannot read" in err and "Traceback" not in err


# ---------------------------------------------------------------- alerts test


def test_a_test_notification_is_delivered_signed_and_clearly_marked(config_file, capsys) -> None:
    with serving(webhook_responder(SECRET)) as sink:
        path = config_file(url=f"{sink.url}/hook")
        code, out, err = _run(capsys, "alerts", "test", "oncall", "--config-file", path)
    assert code == 0, err
    assert out.startswith("oncall: delivered (HTTP 204)")
    (request,) = sink.requests  # the sink verified the Standard Webhooks signature
    body = request.json()
    assert request.headers["webhook-id"].startswith("test-")
    assert request.headers["webhook-id"] in out
    assert "InferloopTestNotification" in request.body.decode()
    assert "please ignore" in request.body.decode()
    assert body["status"] == "firing"
    assert SECRET not in out + err


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (Response(503, "down"), "retry (HTTP 503)"),
        (Response(429, "slow down", {"retry-after": "7"}), "retry (HTTP 429)"),
        (Response(400, "bad"), "permanent (HTTP 400)"),
    ],
)
def test_a_failed_test_send_names_the_outcome_and_exits_1(
    config_file, capsys, answer, outcome
) -> None:
    with serving(webhook_responder(SECRET)) as sink:
        sink.script.append(answer)
        path = config_file(url=f"{sink.url}/hook")
        code, out, _ = _run(capsys, "alerts", "test", "oncall", "--config-file", path)
    assert code == 1
    assert out.startswith(f"oncall: {outcome}")
    if answer.status == 429:
        assert "retry after 7 s" in out


def test_a_gone_slack_channel_is_reported_without_the_secret_url(config_file, capsys) -> None:
    with serving(slack_responder) as sink:
        sink.script.append(Response(410, "channel_is_archived"))
        path = config_file(slack_url=f"{sink.url}/services/{SLACK_TOKEN}")
        code, out, err = _run(capsys, "alerts", "test", "chat", "--config-file", path)
        assert sink.requests[0].path == f"/services/{SLACK_TOKEN}"
    assert code == 1 and out.startswith("chat: gone (HTTP 410)")
    assert "verysecrettoken123" not in out + err


def test_an_unreachable_receiver_is_a_retry_without_a_status(config_file, capsys) -> None:
    from loopback import closed_port_url

    path = config_file(url=closed_port_url())
    code, out, _ = _run(capsys, "alerts", "test", "oncall", "--config-file", path)
    assert code == 1 and out.startswith("oncall: retry (no status)")


def test_testing_an_unknown_or_unbuildable_receiver_exits_2(config_file, capsys) -> None:
    path = config_file()
    code, _, err = _run(capsys, "alerts", "test", "pager", "--config-file", path)
    assert code == 2 and "no receiver 'pager'" in err and "oncall, chat, unreadable" in err
    code, _, err = _run(capsys, "alerts", "test", "unreadable", "--config-file", path)
    assert code == 2 and "no-such-secret" in err
    code, _, err = _run(capsys, "alerts", "test", "oncall")
    assert code == 2 and "--config-file" in err


# ---------------------------------------------------------------- silences


def test_silences_add_list_edit_and_expire_through_the_store(
    migrated_engine, database_url, capsys
) -> None:
    db = ("--database-url", database_url)
    code, out, err = _run(
        capsys,
        "silences",
        "add",
        'model="fraud"',
        "kind=~.*drift",
        "--duration",
        "2h",
        "--comment",
        "retraining",
        "--created-by",
        "ana",
        *db,
    )
    assert code == 0, err
    with migrated_engine.connect() as connection:
        (silence,) = stored_silences(connection, now_ns=time.time_ns())
    assert [str(m) for m in silence.matchers] == ['model="fraud"', 'kind=~".*drift"']
    assert silence.ends_at_ns - silence.starts_at_ns == 2 * 3600 * NS
    assert (silence.comment, silence.created_by) == ("retraining", "ana")
    assert silence.id in out

    code, out, _ = _run(capsys, "silences", "list", *db)
    assert code == 0 and silence.id in out and "active" in out and "'retraining' by ana" in out

    code, out, _ = _run(capsys, "silences", "edit", silence.id, "--comment", "longer", *db)
    assert code == 0 and silence.id in out and "longer" in out

    code, out, _ = _run(
        capsys, "silences", "edit", silence.id, "--matchers", 'model=~"fraud|churn"', *db
    )
    assert code == 0 and f"silence {silence.id} expired" in out
    with migrated_engine.connect() as connection:
        (successor,) = stored_silences(connection, now_ns=time.time_ns())
    assert successor.id != silence.id and successor.id in out
    assert [str(m) for m in successor.matchers] == ['model=~"fraud|churn"']

    code, out, _ = _run(capsys, "silences", "expire", successor.id, *db)
    assert code == 0 and "expired" in out
    code, out, _ = _run(capsys, "silences", "list", *db)
    assert out.strip() == "no active or pending silences"
    code, out, _ = _run(capsys, "silences", "list", "--all", *db)
    assert out.count("expired") == 2 and silence.id in out and successor.id in out


def test_bad_silences_are_refused_with_a_message_and_nothing_stored(
    migrated_engine, database_url, capsys
) -> None:
    db = ("--database-url", database_url)
    for args, message in [
        (("model", "--duration", "1h"), "needs one of =, !=, =~, !~"),
        (("model=fraud", "--duration", "forever"), "invalid duration"),
        (("team=~.*", "--duration", "1h"), "must not match the empty string"),
    ]:
        code, _, err = _run(capsys, "silences", "add", *args, *db)
        assert code == 2 and message in err, err
    with migrated_engine.connect() as connection:
        assert stored_silences(connection, now_ns=0, include_expired=True) == []


def test_expiring_or_editing_an_unknown_or_expired_silence_exits_2(
    migrated_engine, database_url, capsys
) -> None:
    db = ("--database-url", database_url)
    code, _, err = _run(capsys, "silences", "expire", "nope", *db)
    assert code == 2 and "no silence with id 'nope'" in err
    _run(capsys, "silences", "add", "model=fraud", "--duration", "1h", *db)
    with migrated_engine.connect() as connection:
        (silence,) = stored_silences(connection, now_ns=time.time_ns())
    assert _run(capsys, "silences", "expire", silence.id, *db)[0] == 0
    code, _, err = _run(capsys, "silences", "expire", silence.id, *db)
    assert code == 2 and "already expired" in err
    code, _, err = _run(capsys, "silences", "edit", silence.id, "--comment", "x", *db)
    assert code == 2 and "expired" in err
    code, _, err = _run(capsys, "silences", "edit", silence.id, *db)
    assert code == 2 and "nothing to change" in err


# ---------------------------------------------------------------- alerts route


def _open_throughput_finding(engine, model: str) -> None:
    now = time.time_ns()
    with engine.begin() as connection:
        insert_finding(
            connection,
            {
                "fingerprint": f"fp-{model}-traffic",
                "model": model,
                "version": "2",
                "kind": "throughput_change",
                "subject": "",
                "severity": "critical",
                "status": "open",
                "title": f"{model}: no traffic",
                "evidence": {},
                "window_start_ns": now - 900 * NS,
                "window_end_ns": now,
                "first_seen_ns": now,
                "last_seen_ns": now,
                "opened_at_ns": now,
                "occurrences": 2,
            },
        )


def test_the_route_tester_names_receivers_and_what_stops_them(
    migrated_engine, database_url, config_file, capsys
) -> None:
    args = ("--config-file", config_file(), "--database-url", database_url)
    code, out, _ = _run(capsys, "alerts", "route", "model=fraud", "kind=data_drift", *args)
    assert code == 0
    assert 'root -> oncall  group {model="fraud"}' in out
    assert "sent now" in out

    _open_throughput_finding(migrated_engine, "fraud")
    code, out, _ = _run(capsys, "alerts", "route", "model=fraud", "kind=data_drift", *args)
    assert "inhibited by inhibit rule 0" in out and "kind='throughput_change'" in out
    assert "sent now" not in out
    code, out, _ = _run(capsys, "alerts", "route", "model=churn", "kind=data_drift", *args)
    assert "sent now" in out  # the inhibition needs an equal model

    _run(
        capsys,
        "silences",
        "add",
        "model=churn",
        "--duration",
        "1h",
        "--comment",
        "deploy",
        "--database-url",
        database_url,
    )
    with migrated_engine.connect() as connection:
        (silence,) = stored_silences(connection, now_ns=time.time_ns())
    code, out, _ = _run(capsys, "alerts", "route", "model=churn", "kind=data_drift", *args)
    assert f'silenced by {silence.id} (model="churn")' in out and "'deploy'" in out

    code, out, _ = _run(capsys, "alerts", "route", "model=ranker", "team=quiet", *args)
    assert "root.0 -> oncall" in out and "muted now by time interval(s): always" in out


def test_the_route_tester_refuses_a_label_without_a_value(config_file, capsys) -> None:
    code, _, err = _run(capsys, "alerts", "route", "model", "--config-file", config_file())
    assert code == 2 and "NAME=VALUE" in err


# ---------------------------------------------------------------- help


@pytest.mark.parametrize(
    ("argv", "phrase"),
    [
        (["alerts", "check", "--help"], "every problem with its line"),
        (["alerts", "route", "--help"], "mute time interval"),
        (["alerts", "test", "--help"], "Secrets are never printed"),
        (["silences", "add", "--help"], "--duration"),
        (["silences", "list", "--help"], "include expired silences"),
        (["silences", "edit", "--help"], "expires it and creates a new silence"),
        (["silences", "expire", "--help"], "a pending one never begins"),
    ],
)
def test_each_command_explains_itself_in_its_help(capsys, argv, phrase) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 0
    assert phrase in " ".join(capsys.readouterr().out.split())


def test_alerts_run_delivers_open_findings_and_stops_on_sigterm(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    from waiting import wait_for

    from inferloop.store import create_engine_for, upgrade

    url = f"sqlite:///{tmp_path / 'run.db'}"
    upgrade(url)
    engine = create_engine_for(url)
    now = time.time_ns()
    with engine.begin() as connection:
        insert_finding(
            connection,
            {
                "fingerprint": "fp-run",
                "model": "fraud",
                "version": "2",
                "kind": "error_rate_regression",
                "subject": "error_rate",
                "severity": "critical",
                "status": "open",
                "title": "fraud 2: error rate 0 → 2.1%",
                "evidence": {"p_value": 2e-10},
                "window_start_ns": now - 900 * 10**9,
                "window_end_ns": now,
                "first_seen_ns": now,
                "last_seen_ns": now,
                "opened_at_ns": now,
                "occurrences": 2,
            },
        )
    engine.dispose()
    with serving(webhook_responder(SECRET)) as sink:
        config = tmp_path / "alerting.yaml"
        config.write_text(
            "rules:\n  - name: everything\n"
            "route:\n  receiver: oncall\n  group_wait: 0s\nreceivers:\n"
            f"  - name: oncall\n    type: webhook\n    url: {sink.url}\n    secret: {SECRET}\n"
        )
        env = {
            **os.environ,
            "INFERLOOP_DATABASE_URL": url,
            "INFERLOOP_ALERTS__CONFIG_FILE": str(config),
        }
        with subprocess.Popen(
            [
                sys.executable,
                "-m",
                "inferloop.app",
                "alerts",
                "run",
                "--evaluate-interval-s",
                "0.1",
            ],
            env=env,
            stdin=subprocess.DEVNULL,
        ) as process:
            try:
                wait_for(lambda: sink.requests, timeout=30, what="the alert to be delivered")
            finally:
                process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
    (request,) = sink.requests
    assert request.json()["alerts"][0]["annotations"]["title"] == "fraud 2: error rate 0 → 2.1%"
