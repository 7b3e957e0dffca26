"""Every drift test of a run lands in the drift table, in the findings' transaction:
one cell per (version, kind, feature, window), the drifted one linked to its finding,
and a re-run of the same window (another instance, same clock) upserts the same cells."""

from __future__ import annotations

import sqlalchemy as sa
from analyzer_streams import HOUR_NS, NS, Stream, ingest

from inferloop.analyzer import AnalyzerConfig, AnalyzerWorker, list_findings
from inferloop.analyzer._model_run import ModelAnalysis
from inferloop.settings import Settings
from inferloop.store.drift_cells import DriftCell, DriftCellHour, drift_cells

T0 = 1_800_000_000 * NS
CONFIG = AnalyzerConfig(
    window_s=3600, baseline_events=500, confirm_runs=2, confirm_after_s=60, render_reports=False
)


def _seed(engine) -> None:
    stream = Stream("fraud", seed=3)
    for i, knobs in enumerate([{}, {}, {"age_shift": 0.6, "embedding_dims": 0}]):
        inference, labels = stream.hour(T0 - (3 - i) * HOUR_NS, **knobs)
        ingest(engine, inference + labels)


def _cells(engine) -> list[sa.Row]:
    with engine.connect() as connection:
        return drift_cells(connection, "fraud", start_ns=0, end_ns=T0 + HOUR_NS)


def _count(engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(sa.select(sa.func.count()).select_from(DriftCell))


def _hour_windows(engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(sa.select(sa.func.sum(DriftCellHour.windows)))


def _findings(engine) -> list[sa.Row]:
    with engine.connect() as connection:
        return list_findings(connection, model="fraud")


def test_a_run_writes_a_cell_per_tested_feature_and_links_the_drifted_one(
    migrated_engine, tmp_path
):
    _seed(migrated_engine)
    worker = AnalyzerWorker(
        Settings(data_dir=tmp_path / "data"),
        migrated_engine,
        interval_s=60,
        config=CONFIG,
        clock=lambda: T0,
    )
    worker.run_once()

    cells = {(c.kind, c.feature): c for c in _cells(migrated_engine)}
    assert {("data_drift", "age"), ("data_drift", "income"), ("dataset_drift", "*")} <= set(cells)
    assert all(c.window_end_ns == T0 and c.window_start_ns == T0 - HOUR_NS for c in cells.values())
    assert all(c.version == "v1" and c.analyzed_at_ns == T0 for c in cells.values())
    age = cells["data_drift", "age"]
    assert age.drifted and age.alarmed and age.test == "ks" and age.score_kind == "p_value"
    assert age.score < age.threshold and age.baseline["type"] == "first_events"
    finding = next(f for f in _findings(migrated_engine) if f.subject == "age")
    assert age.finding_id == finding.id and age.finding_status == "pending"
    income = cells["data_drift", "income"]
    assert not income.alarmed and income.finding_id is None
    dataset = cells["dataset_drift", "*"]
    assert dataset.test == "drift_share" and dataset.threshold == CONFIG.drift.drift_share


def test_a_re_run_of_the_same_window_writes_no_duplicate_cells(migrated_engine, tmp_path):
    _seed(migrated_engine)
    first = ModelAnalysis(migrated_engine, CONFIG, tmp_path / "reports")
    second = ModelAnalysis(migrated_engine, CONFIG, tmp_path / "reports")
    first.run("fraud", ["v1"], T0)
    written = _count(migrated_engine)
    assert written >= 4
    second.run("fraud", ["v1"], T0)
    assert _count(migrated_engine) == written == _hour_windows(migrated_engine)
    assert [c.finding_id for c in _cells(migrated_engine) if c.alarmed]

    first.run("fraud", ["v1"], T0 + 61 * NS)
    assert _count(migrated_engine) == 2 * written == _hour_windows(migrated_engine)
