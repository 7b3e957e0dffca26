"""`inferloop up` with an alerting config: the analyzer's findings reach the configured
receiver on their own, /metrics shows the outbox, and a broken config stops the start
with the line of the problem."""

from __future__ import annotations

import base64
import signal
import time

import httpx
from loopback import serving, webhook_responder
from serving import served
from waiting import wait_for

from inferloop.app.cli import main
from inferloop.app.embedded import build_platform
from inferloop.settings import Settings
from inferloop.store.findings import insert_finding, update_finding

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
NS = 1_000_000_000


def _write_config(path, url: str) -> None:
    path.write_text(
        f"""
rules:
  - name: everything
route:
  receiver: oncall
  group_by: [model]
  group_wait: 0s
  group_interval: 5m
receivers:
  - name: oncall
    type: webhook
    url: {url}
    secret: {SECRET}
"""
    )


def _finding(now_ns: int) -> dict:
    return {
        "fingerprint": "fp-latency",
        "model": "fraud",
        "version": "2",
        "kind": "latency_regression",
        "subject": "latency_p95_ms",
        "severity": "critical",
        "status": "open",
        "title": "fraud 2: p95 latency up 4x",
        "evidence": {"baseline_ms": 0.06, "current_ms": 2.9},
        "window_start_ns": now_ns - 900 * NS,
        "window_end_ns": now_ns,
        "first_seen_ns": now_ns,
        "last_seen_ns": now_ns,
        "opened_at_ns": now_ns,
        "occurrences": 2,
    }


def test_a_finding_reaches_the_receiver_and_its_resolve_follows_within_seconds(tmp_path):
    with serving(webhook_responder(SECRET)) as sink:
        config = tmp_path / "alerting.yaml"
        _write_config(config, sink.url)
        settings = Settings(
            data_dir=tmp_path,
            alerts={"config_file": config, "evaluate_interval_s": 0.1, "dispatch_interval_s": 0.05},
        )
        app, engine = build_platform(settings)
        with served(app) as base:
            with engine.begin() as connection:
                finding = insert_finding(connection, _finding(time.time_ns()))
            wait_for(lambda: len(sink.requests) == 1, timeout=10, what="the firing message")
            with engine.begin() as connection:
                update_finding(
                    connection, finding, {"status": "resolved", "resolved_at_ns": time.time_ns()}
                )
            wait_for(lambda: len(sink.requests) == 2, timeout=10, what="the resolve")
            metrics = httpx.get(f"{base}/metrics").text
        engine.dispose()
    assert [r.json()["status"] for r in sink.requests] == ["firing", "resolved"]
    assert "inferloop_alert_notifications_pending 0.0" in metrics
    assert (
        'inferloop_alert_delivery_latency_seconds_count{receiver="oncall",status="resolved"} 1.0'
        in metrics
    )


def test_a_broken_alerting_config_stops_up_and_names_the_line(tmp_path, capsys, monkeypatch):
    config = tmp_path / "alerting.yaml"
    config.write_text("route:\n  receiver: oncall\n  group_wait: soon\nreceivers: []\n")
    monkeypatch.setenv("INFERLOOP_ALERTS__CONFIG_FILE", str(config))
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        assert main(["up", "--data-dir", str(tmp_path), "--port", "0"]) == 2
    finally:  # `up` installs its Ctrl-C handler: give pytest its own back
        for number, handler in handlers.items():
            signal.signal(number, handler)
    err = capsys.readouterr().err
    assert "line 3" in err and "group_wait" in err
