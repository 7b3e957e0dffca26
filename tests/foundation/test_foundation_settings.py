"""Settings: environment variables, precedence and refusal of unsafe production set-ups."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from inferloop.settings import Settings


def test_default_store_is_a_sqlite_file_in_the_data_dir(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.resolved_database_url() == f"sqlite:///{(tmp_path / 'inferloop.db').resolve()}"


def test_environment_variables_configure_the_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFERLOOP_DATABASE_URL", "postgresql+psycopg://u@db/inferloop")
    monkeypatch.setenv("INFERLOOP_KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    monkeypatch.setenv("INFERLOOP_PORT", "9000")
    settings = Settings()
    assert settings.resolved_database_url() == "postgresql+psycopg://u@db/inferloop"
    assert settings.kafka_bootstrap_servers == "k1:9092,k2:9092"
    assert settings.port == 9000


def test_arguments_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFERLOOP_PORT", "9000")
    assert Settings(port=9100).port == 9100


def test_invalid_values_are_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFERLOOP_PORT", "70000")
    with pytest.raises(ValidationError, match="port"):
        Settings()


def test_production_without_api_key_is_refused() -> None:
    with pytest.raises(ValueError, match="INFERLOOP_API_KEY"):
        Settings(environment="production").check_safe_for_production()
    Settings(environment="production", api_key="s3cret").check_safe_for_production()


def test_settings_survive_a_round_trip_through_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    original = Settings(
        data_dir=tmp_path, database_url="postgresql+psycopg://u@db/x", kafka_topic="t", port=9001
    )
    for name, value in original.to_environment().items():
        monkeypatch.setenv(name, value)
    assert Settings() == original


def test_a_nested_section_reads_its_variables_with_a_double_underscore(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INFERLOOP_ANALYZER__WINDOW_S", "120")
    monkeypatch.setenv("INFERLOOP_COLLECTOR__MAX_POLL_RECORDS", "50")
    settings = Settings()
    assert settings.analyzer.window_s == 120.0
    assert settings.collector.max_poll_records == 50
    assert settings.analyzer.confirm_runs == 2  # the rest of the section keeps its defaults


def test_a_misspelt_field_of_a_section_is_refused() -> None:
    with pytest.raises(ValidationError, match="windw_s"):
        Settings(analyzer={"windw_s": 10})


def test_the_log_level_is_a_validated_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFERLOOP_LOG_LEVEL", "debug")
    assert Settings().log_level == "DEBUG"
    monkeypatch.setenv("INFERLOOP_LOG_LEVEL", "chatty")
    with pytest.raises(ValidationError, match="log_level"):
        Settings()


def test_production_without_api_key_is_refused_at_construction() -> None:
    with pytest.raises(ValidationError, match="INFERLOOP_API_KEY"):
        Settings(environment="production")


def test_nested_settings_survive_a_round_trip_through_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = Settings(analyzer={"window_s": 60, "baseline": "previous_period"})
    environment = original.to_environment()
    assert environment["INFERLOOP_ANALYZER__WINDOW_S"] == "60.0"
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert Settings() == original


def test_the_analyzer_config_takes_its_knobs_from_the_settings_section(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from inferloop.analyzer import AnalyzerConfig

    monkeypatch.setenv("INFERLOOP_ANALYZER__CONFIRM_RUNS", "3")
    config = AnalyzerConfig.from_settings(Settings().analyzer)
    assert config.confirm_runs == 3
    assert config.confirm_after_ns == int(config.window_s * 1e9)
