"""The feedback loop as `inferloop up` and `inferloop feedback` run it, from the settings."""

from __future__ import annotations

import base64

import pytest
from pydantic import ValidationError

from inferloop.app.cli import main
from inferloop.app.embedded import feedback_workers
from inferloop.feedback import RequestDispatcher, RetrainWorker, RolloutWorker
from inferloop.settings import Settings
from inferloop.store import upgrade

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def test_without_destinations_only_the_rollout_guard_runs(tmp_path) -> None:
    (worker,) = feedback_workers(Settings(data_dir=tmp_path), engine=None)
    assert isinstance(worker, RolloutWorker)


def test_each_configured_destination_is_served_by_the_dispatcher(tmp_path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        feedback={
            "webhook_url": "http://127.0.0.1:9/hooks",
            "webhook_secret": SECRET,
            "command": "cat",
            "check_interval_s": 60,
            "retrain_kinds": "quality_drop, *drift",
            "retrain_min_new_labels": 50,
            "on_inconclusive": "extend",
            "max_checks": 12,
            "send_timeout_s": 90,
            "promote_after_calls": 2000,
        },
    )
    rollout, retrain, dispatcher = feedback_workers(settings, engine=None)
    assert isinstance(dispatcher, RequestDispatcher)
    assert dispatcher.timeout_s == 90 and dispatcher.lease_ns > 90 * 10**9
    assert rollout.destinations == ("webhook", "command")
    assert rollout.interval_ns == 60 * 10**9
    assert (rollout.on_inconclusive, rollout.max_checks) == ("extend", 12)
    guard = rollout.guard()
    assert guard.options["latency_exceedance"].budget == 2000
    assert guard.options["accuracy"].budget == 2000
    assert isinstance(retrain, RetrainWorker)
    assert retrain.destinations == ("webhook", "command")
    assert retrain.policy.kinds == ("quality_drop", "*drift")
    assert retrain.policy.min_new_labels == 50
    assert retrain.snapshot_dir == str(tmp_path / "snapshots")


def test_a_webhook_without_its_signing_secret_is_refused() -> None:
    with pytest.raises(ValidationError, match="webhook_url and webhook_secret go together"):
        Settings(feedback={"webhook_url": "http://127.0.0.1:9/hooks"})


def test_feedback_once_on_an_empty_store_exits_cleanly(tmp_path, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'feedback.db'}"
    upgrade(url)
    assert main(["feedback", "--once", "--database-url", url]) == 0
