"""Pinned references (Parquet/CSV upload), Evidently reports of findings, previous-period
baselines and candidate-vs-live comparison on the real store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from analyzer_streams import HOUR_NS, NS, Stream, ingest

from inferloop.analyzer import (
    AnalyzerConfig,
    AnalyzerWorker,
    active_reference,
    compare_stored_versions,
    list_findings,
    register_reference,
    render_drift_report,
)
from inferloop.settings import Settings

T0 = 1_800_000_000 * NS


def _reference_frame(rng, n=3000, age_mean=40.0):
    return pl.DataFrame(
        {
            "age": rng.normal(age_mean, 10, n),
            "income": rng.lognormal(10, 0.5, n),
            "country": rng.choice(["fr", "de", "es", "it"], n),
        }
    )


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_uploaded_reference_is_stored_and_the_newest_one_applies(migrated_engine, tmp_path, suffix):
    rng = np.random.default_rng(0)
    source = tmp_path / f"reference.{suffix}"
    frame = _reference_frame(rng)
    frame.write_parquet(source) if suffix == "parquet" else frame.write_csv(source)
    first = register_reference(migrated_engine, tmp_path / "data", "fraud", source)
    second = register_reference(migrated_engine, tmp_path / "data", "fraud", source, version="v2")
    with migrated_engine.connect() as connection:
        for_v1 = active_reference(connection, "fraud", "v1")
        for_v2 = active_reference(connection, "fraud", "v2")
        assert active_reference(connection, "other", "v1") is None
    assert (for_v1.id, for_v2.id) == (first, second)
    assert for_v1.column_kinds == {
        "age": "numerical",
        "income": "numerical",
        "country": "categorical",
    }
    assert pl.read_parquet(for_v1.path).shape == (3000, 3)
    third = register_reference(migrated_engine, tmp_path / "data", "fraud", frame.head(500))
    with migrated_engine.connect() as connection:
        assert active_reference(connection, "fraud", "v1").id == third


def test_reference_upload_refuses_unknown_files_and_empty_data(migrated_engine, tmp_path):
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(ValueError, match="parquet or .csv"):
        register_reference(migrated_engine, tmp_path, "m", tmp_path / "x.json")
    with pytest.raises(ValueError, match="needs rows"):
        register_reference(migrated_engine, tmp_path, "m", pl.DataFrame({"a": []}))


@pytest.mark.slow
def test_pinned_reference_drives_drift_and_the_finding_gets_an_evidently_report(
    migrated_engine, tmp_path
):
    rng = np.random.default_rng(1)
    # the pinned reference says ages centre on 30; live traffic centres on 40
    register_reference(
        migrated_engine, tmp_path / "data", "fraud", _reference_frame(rng, age_mean=30.0)
    )
    stream = Stream("fraud", seed=2)
    for hour in range(2):
        inference, labels = stream.hour(T0 - (2 - hour) * HOUR_NS, events=600)
        ingest(migrated_engine, inference + labels)
    clock = [T0]
    worker = AnalyzerWorker(
        Settings(data_dir=tmp_path / "data"),
        migrated_engine,
        interval_s=60,
        config=AnalyzerConfig(window_s=3600, confirm_runs=1, confirm_after_s=0),
        clock=lambda: clock[0],
    )
    worker.run_once()
    with migrated_engine.connect() as connection:
        findings = list_findings(connection, model="fraud")
    drift = [f for f in findings if f.kind == "data_drift"]
    assert [f.subject for f in drift] == ["age"]
    assert drift[0].evidence["baseline"]["type"] == "pinned"
    report = Path(drift[0].report_path)
    assert (
        report.parent == (tmp_path / "data" / "reports").resolve()
        and report.stat().st_size > 10_000
    )


def test_previous_period_baseline_is_used_when_asked(migrated_engine, tmp_path):
    stream = Stream("fraud", seed=3)
    for hour, shift in enumerate([0.0, 0.0, 0.0, 0.7]):
        inference, labels = stream.hour(T0 - (4 - hour) * HOUR_NS, events=600, age_shift=shift)
        ingest(migrated_engine, inference + labels)
    worker = AnalyzerWorker(
        Settings(data_dir=tmp_path / "data"),
        migrated_engine,
        interval_s=60,
        config=AnalyzerConfig(
            window_s=3600,
            baseline="previous_period",
            confirm_runs=1,
            confirm_after_s=0,
            render_reports=False,
        ),
        clock=lambda: T0,
    )
    worker.run_once()
    with migrated_engine.connect() as connection:
        drift = [f for f in list_findings(connection, model="fraud") if f.kind == "data_drift"]
    assert [f.subject for f in drift] == ["age"]
    assert drift[0].evidence["baseline"] == {
        "type": "previous_period",
        "start_ns": T0 - 2 * HOUR_NS,
        "end_ns": T0 - HOUR_NS,
    }
    assert drift[0].report_path is None


def test_candidate_version_compared_with_live_over_the_same_period(migrated_engine):
    live, good, bad = (
        Stream("fraud", "v1", seed=4),
        Stream("fraud", "v2", seed=5),
        Stream("fraud", "v3", seed=6),
    )
    start = T0 - HOUR_NS
    for stream, knobs in (
        (live, {}),
        (good, {"events": 400}),
        (bad, {"events": 400, "latency_factor": 1.6, "accuracy": 0.75}),
    ):
        inference, labels = stream.hour(start, **knobs)
        ingest(migrated_engine, inference + labels)
    same = compare_stored_versions(
        migrated_engine, "fraud", live="v1", candidate="v2", start_ns=start, end_ns=T0
    )
    worse = compare_stored_versions(
        migrated_engine, "fraud", live="v1", candidate="v3", start_ns=start, end_ns=T0
    )
    assert same.verdict == "not_worse"
    assert worse.verdict == "worse"
    assert {"latency_p50_ms", "accuracy"} <= {c.metric for c in worse.regressions}


def test_render_drift_report_writes_html_for_pandas_or_polars(tmp_path):
    rng = np.random.default_rng(7)
    reference, current = _reference_frame(rng, 800), _reference_frame(rng, 500, age_mean=45.0)
    kinds = {"age": "numerical", "income": "numerical", "country": "categorical"}
    path = render_drift_report(
        reference.to_pandas(), current, kinds, tmp_path / "r" / "report.html"
    )
    assert "<html" in path.read_text()[:2000].lower()
