"""`make run`'s demo end to end in fast mode, each stage checked from the store it leaves:
every event stored, a drift finding alerting the demo's on-call and resolving, labels joined
(late and corrected ones too), a retrain on a readable snapshot, the slow build rolled back
with an alert, the fixed build promoted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from inferloop.feedback import RETRAIN_REQUESTED, label_join, read_snapshot, version_history
from inferloop.store import create_engine_for
from inferloop.store.completeness import completeness
from inferloop.store.feedback_pages import requests_page
from inferloop.store.findings import list_findings
from inferloop.store.outbox import notifications

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

MODEL, ENVIRONMENT = "fraud", "demo"
EVERY_STATUS = ("pending", "open", "resolved", "dismissed")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    data_dir = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFERLOOP_")}
    command = [sys.executable, "-m", "inferloop.app", "demo", "--fast", "--exit"]
    command += ["--port", "0", "--data-dir", str(data_dir)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    return result, data_dir


@pytest.fixture(scope="module")
def store(demo_run):
    result, data_dir = demo_run
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    engine = create_engine_for(f"sqlite:///{data_dir / 'demo.db'}")
    with engine.connect() as connection:
        yield connection
    engine.dispose()


def test_every_stage_is_told_and_the_summary_links_the_dashboard(demo_run, store):
    out = demo_run[0].stdout
    for stage in range(1, 8):
        assert f"{stage}/7" in out
    assert "/ui/findings/" in out and "/ui/feedback/fraud" in out


def test_nothing_sent_is_lost(store):
    report = completeness(store, MODEL, start_ns=0, end_ns=2**62)
    assert report.emitted > 5_000
    assert report.lost == 0 and report.sdk_dropped_total == 0


def test_drift_alerts_reach_the_on_call_and_resolve(store):
    findings = list_findings(store, model=MODEL, statuses=EVERY_STATUS)
    assert any(f.kind in ("data_drift", "dataset_drift") for f in findings)
    delivered = notifications(store, states=["delivered"], limit=1000)
    kinds = {
        (alert["labels"].get("kind"), note.status)
        for note in delivered
        for alert in note.body["alerts"]
    }
    assert ("dataset_drift", "firing") in kinds or ("data_drift", "firing") in kinds
    assert ("rollout_failed", "firing") in kinds and ("rollout_failed", "resolved") in kinds


def test_labels_are_joined_including_late_and_corrected_ones(store):
    report = label_join(store, model=MODEL, start_ns=0, end_ns=2**62)
    by_version = {v.version: v for v in report.versions}
    assert by_version["1"].labeled > 500
    assert by_version["1"].corrections > 0 and by_version["1"].revised
    assert by_version["1"].delay_p95_s > by_version["1"].delay_p50_s  # some came late


def test_retrain_on_a_readable_snapshot_and_its_versions_registered(store):
    retrains = requests_page(store, filters={"type": RETRAIN_REQUESTED}, after=None, limit=50)
    events = {row["id"]: row["event"] for row in retrains}
    assert len(events) == 2  # the policy's, then the team's by hand after the rollback
    for event in events.values():
        snapshot = read_snapshot(event["data"]["snapshot"]["uri"])  # the hash is verified
        assert snapshot.manifest["labeled_count"] > 100
    moves = version_history(store, MODEL)
    registered = [m for m in moves if m.environment is None]
    assert [m.version for m in registered] == [1, 2, 3]


def test_the_slow_build_is_rolled_back_and_the_fixed_one_promoted(store):
    final = {}
    for move in version_history(store, MODEL):
        if move.environment == ENVIRONMENT:
            final[move.version] = str(move.to_state)
    assert final == {1: "retired", 2: "rolled_back", 3: "live"}
    checks = store.execute(
        sa.text("select candidate_version, outcome from rollout_checks order by id")
    ).all()
    assert ("2", "fail") in {(str(v), o) for v, o in checks}
    assert ("3", "pass") in {(str(v), o) for v, o in checks}
