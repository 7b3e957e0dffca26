"""The CLI as a user meets it: help, migrations, and `inferloop up` answering on its URL."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from inferloop.app.cli import main

INFERLOOP = [sys.executable, "-m", "inferloop.app"]


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("up", "db", "collector", "analyzer", "dev"):
        assert re.search(rf"^\s+{command}\s", out, re.MULTILINE), command


def test_db_upgrade_then_current_reports_head(tmp_path: Path, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["db", "upgrade", "--database-url", url]) == 0
    assert main(["db", "current", "--database-url", url]) == 0
    revision = capsys.readouterr().out.strip().splitlines()[-1]
    assert revision and revision != "empty (no migrations applied)"


def test_unsafe_production_settings_are_refused_with_a_clear_message(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INFERLOOP_ENVIRONMENT", "production")
    assert main(["db", "current", "--data-dir", str(tmp_path)]) == 2
    assert "INFERLOOP_API_KEY" in capsys.readouterr().err


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_up_migrates_sqlite_serves_on_the_printed_url_and_stops_on_signal(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    env = {**os.environ, "INFERLOOP_DATA_DIR": str(tmp_path), "INFERLOOP_PORT": "0"}
    with subprocess.Popen(
        [*INFERLOOP, "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            first_line = process.stdout.readline()
            match = re.search(r"(http://\S+)", first_line)
            assert match, f"no URL printed: {first_line!r}"
            with urllib.request.urlopen(f"{match.group(1)}/healthz", timeout=10) as response:
                assert response.status == 200
                json.loads(response.read())
            assert (tmp_path / "inferloop.db").exists()
        finally:
            process.send_signal(stop_signal)
            assert process.wait(timeout=30) == 0


def test_an_unreadable_reference_file_is_a_clear_error_not_a_traceback(
    tmp_path: Path, capsys
) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["db", "upgrade", "--database-url", url]) == 0
    notes = tmp_path / "notes.json"
    notes.write_text("{}")
    assert main(["reference", "fraud", str(notes), "--database-url", url]) == 2
    err = capsys.readouterr().err
    assert "unsupported reference file 'notes.json'" in err
    assert "Traceback" not in err


def test_findings_lists_the_statuses_asked_for(tmp_path: Path, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["db", "upgrade", "--database-url", url]) == 0
    capsys.readouterr()
    assert main(["findings", "--database-url", url, "--status", "resolved", "dismissed"]) == 0
    assert capsys.readouterr().out.strip() == "no resolved or dismissed findings"
    with pytest.raises(SystemExit):
        main(["findings", "--database-url", url, "--status", "closed"])
    assert "invalid choice: 'closed'" in capsys.readouterr().err
