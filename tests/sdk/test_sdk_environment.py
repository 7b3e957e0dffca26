"""A deployment can switch monitoring on through its environment alone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from inferloop.sdk import events_of

SERVING_CODE = """
from inferloop.sdk import flush, monitor

@monitor(model="fraud", version="3")
def predict(x):
    return x * 2

assert predict(21) == 42
flush(timeout=10)
"""


def _run_serving_code(tmp_path: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFERLOOP_")}
    return subprocess.run(
        [sys.executable, "-c", SERVING_CODE],
        env={**env, **variables},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_transport_variable_alone_starts_monitoring_without_configure(tmp_path: Path) -> None:
    events_file = tmp_path / "events.jsonl"
    result = _run_serving_code(
        tmp_path, INFERLOOP_SDK_TRANSPORT="file", INFERLOOP_FILE_PATH=str(events_file)
    )
    assert result.returncode == 0, result.stderr
    lines = events_file.read_text().splitlines()
    events = [event for line in lines for event in events_of(line)]
    assert [(e["model"], e["version"], e["status"]) for e in events] == [("fraud", "3", "ok")]


def test_bad_transport_variable_is_logged_and_the_model_still_runs(tmp_path: Path) -> None:
    result = _run_serving_code(tmp_path, INFERLOOP_SDK_TRANSPORT="carrier-pigeon")
    assert result.returncode == 0, result.stderr
    assert "INFERLOOP_SDK_TRANSPORT" in result.stderr


def test_without_the_variable_monitor_stays_a_no_op(tmp_path: Path) -> None:
    result = _run_serving_code(tmp_path)
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.iterdir()) == []
