"""CLI flags come from the settings fields: same names, help, defaults and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferloop.app.cli import build_parser, main
from inferloop.app.config_reference import BEGIN, END, reference_markdown
from inferloop.app.flags import settings_from_args
from inferloop.settings import AnalyzerSettings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_analyzer_setting_is_a_flag_of_the_analyzer_command(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["analyzer", "--help"])
    help_text = capsys.readouterr().out
    for name in AnalyzerSettings.model_fields:
        assert f"--{name.replace('_', '-')}" in help_text, name
        assert f"INFERLOOP_ANALYZER__{name.upper()}" in help_text, name


def test_a_flag_wins_over_the_variable_and_the_rest_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INFERLOOP_ANALYZER__WINDOW_S", "30")
    monkeypatch.setenv("INFERLOOP_ANALYZER__MIN_ROWS", "7")
    args = build_parser().parse_args(["analyzer", "--window-s", "5", "--interval", "2"])
    settings = settings_from_args(args)
    assert settings.analyzer.window_s == 5.0
    assert settings.analyzer.interval_s == 2.0
    assert settings.analyzer.min_rows == 7


def test_an_invalid_variable_is_named_in_the_error_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("INFERLOOP_ANALYZER__WINDOW_S", "-1")
    assert main(["config"]) == 2
    assert "INFERLOOP_ANALYZER__WINDOW_S" in capsys.readouterr().err


def test_config_hides_the_api_key(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("INFERLOOP_API_KEY", "s3cret-key")
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "INFERLOOP_API_KEY=***" in out
    assert "s3cret-key" not in out


def test_the_configuration_reference_in_the_docs_is_the_generated_one() -> None:
    text = DOCS.read_text()
    assert BEGIN in text and END in text, f"{DOCS} lost its generated-section markers"
    committed = text[text.index(BEGIN) : text.index(END) + len(END)] + "\n"
    assert committed == reference_markdown(), (
        "docs/configuration.md is out of date: regenerate the table with "
        "`inferloop config --reference` and paste it between the markers"
    )
