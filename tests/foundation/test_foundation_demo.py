"""`make run`'s demo end to end: the bad release is caught by drift findings and the
candidate-vs-live verdict, and nothing sent is lost on the way."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_demo_catches_the_bad_release_and_loses_no_event(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFERLOOP_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "inferloop.app",
            "demo",
            "--exit",
            "--port",
            "0",
            "--requests",
            "400",
            "--data-dir",
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert '"lost": 0' in out and '"received_share": 1.0' in out
    assert "v2 data_drift" in out and "feature 'amount' drifted" in out
    assert "v1 data_drift" not in out
    assert "(the guarded-rollout check): WORSE" in out
    assert "error_rate" in out and "REGRESSED" in out
    assert (tmp_path / "reports").is_dir()
