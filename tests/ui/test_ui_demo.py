"""`make run`'s demo end to end in fast mode, each stage checked from the store it leaves:
every event stored, a drift finding alerting the demo's on-call and resolving, labels joined
(late and corrected ones too), a retrain on a readable snapshot, the slow build rolled back
with an alert, the fixed build promoted; then the dashboard page of each stage, as the
summary links it, in a real Chromium while the platform keeps serving, and Ctrl-C stopping
it all. With INFERLOOP_SCREENSHOTS_TO_DOCS=1 the pages' screenshots become the README's."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
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


LINK = re.compile(r"^\s+(?P<name>\S.*?)\s+(?P<url>http://127\.0\.0\.1:\d+/ui\S*)\s*$")


@dataclass
class DemoRun:
    process: subprocess.Popen
    output: str
    data_dir: Path
    links: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Iterator[DemoRun]:
    """The demo in fast mode, left serving after its summary; Ctrl-C (SIGINT) at the end."""
    data_dir = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFERLOOP_")}
    env["COLUMNS"] = "200"  # rich wraps at 80 columns without a terminal
    command = [sys.executable, "-m", "inferloop.app", "demo", "--fast"]
    command += ["--port", "0", "--data-dir", str(data_dir)]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    serving = threading.Event()

    def read_output() -> None:  # to the end, so that the demo never blocks on a full pipe
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "keeps running" in line:
                serving.set()
        serving.set()  # the demo ended (a stage failed): stop waiting, show its output

    reader = threading.Thread(target=read_output, name="demo-output", daemon=True)
    reader.start()
    serving.wait(timeout=840)
    run = DemoRun(process, "".join(lines), data_dir)
    summary = run.output.split("7/7 Summary")[-1]
    run.links = {m["name"]: m["url"] for m in map(LINK.match, summary.splitlines()) if m}
    yield run
    if process.poll() is None:  # a test failed before the Ctrl-C test
        process.kill()
        process.wait(timeout=30)
    reader.join(timeout=30)
    assert process.stdout is not None
    process.stdout.close()


@pytest.fixture(scope="module")
def store(demo_run):
    assert demo_run.process.poll() is None, demo_run.output[-6000:]  # still serving
    engine = create_engine_for(f"sqlite:///{demo_run.data_dir / 'demo.db'}")
    with engine.connect() as connection:
        yield connection
    engine.dispose()


def test_every_stage_is_told_and_the_summary_links_the_dashboard(demo_run, store):
    for stage in range(1, 8):
        assert f"{stage}/7" in demo_run.output
    assert set(demo_run.links) == {"overview", "drift finding", "alerts", "model", "feedback loop"}


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


def test_the_dashboard_page_of_each_stage_opens_clean_in_chromium(
    demo_run, store, new_page, screenshot
):
    for name, url in demo_run.links.items():
        page, watched = new_page(1280)
        response = page.goto(url, wait_until="networkidle")
        assert response is not None and response.status == 200, (name, url)
        watched.assert_clean()
        screenshot(page, "demo-" + name.replace(" ", "-"), 1280)
        page.context.close()


def test_ctrl_c_stops_the_demo_cleanly(demo_run, store):
    """The module's last test: the demo still serves; Ctrl-C stops all of it, status 0."""
    started = time.monotonic()
    demo_run.process.send_signal(signal.SIGINT)
    assert demo_run.process.wait(timeout=60) == 0
    assert time.monotonic() - started < 30
