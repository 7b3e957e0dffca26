"""The analyzer service end to end on the real store (SQLite file and PostgreSQL):
problems injected into a stream become findings, confirmed, deduplicated, reported,
then resolved when they clear; stable streams raise nothing; workers share models."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from analyzer_streams import HOUR_NS, NS, Stream, ingest

from inferloop.analyzer import AnalyzerConfig, AnalyzerWorker, finding_report_path, list_findings
from inferloop.settings import Settings

T0 = 1_800_000_000 * NS  # a fixed, minute-aligned "now" for the first run
# hour-long windows; the confirming run comes one interval later (61 s)
CONFIG = AnalyzerConfig(window_s=3600, baseline_events=500, confirm_runs=2, confirm_after_s=60)


class Clock:
    def __init__(self, now_ns: int) -> None:
        self.now_ns = now_ns

    def __call__(self) -> int:
        return self.now_ns


def _write_hours(engine, stream: Stream, first_hour_ns: int, hours: list[dict]) -> None:
    for i, knobs in enumerate(hours):
        inference, labels = stream.hour(first_hour_ns + i * HOUR_NS, **knobs)
        ingest(engine, inference + labels)


def _worker(engine, tmp_path: Path, clock: Clock, **kw) -> AnalyzerWorker:
    settings = Settings(data_dir=tmp_path / "data")
    return AnalyzerWorker(settings, engine, interval_s=60, config=CONFIG, clock=clock, **kw)


def _active(engine, model=None, statuses=("pending", "open")):
    with engine.connect() as connection:
        return list_findings(connection, model=model, statuses=statuses)


@pytest.mark.slow
def test_injected_problems_become_findings_that_resolve_when_cleared(migrated_engine, tmp_path):
    stream = Stream("fraud", seed=1)
    stable = {}
    bad = {"age_shift": 0.6, "latency_factor": 2.0, "error_rate": 0.08, "accuracy": 0.7}
    _write_hours(migrated_engine, stream, T0 - 3 * HOUR_NS, [stable, stable, bad])
    clock = Clock(T0)
    worker = _worker(migrated_engine, tmp_path, clock)

    worker.run_once()
    pending = _active(migrated_engine, "fraud")
    assert pending and {f.status for f in pending} == {"pending"}  # one window is not enough

    clock.now_ns += 61 * NS
    worker.run_once()
    opened = _active(migrated_engine, "fraud")
    kinds = {(f.kind, f.subject) for f in opened}
    assert {
        ("data_drift", "age"),
        ("error_rate_regression", "error_rate"),
        ("quality_drop", "accuracy"),
    } <= kinds
    assert any(kind == "latency_regression" for kind, _ in kinds)
    assert {f.status for f in opened} == {"open"}
    assert len(opened) == len({f.fingerprint for f in opened})  # deduplicated across runs
    assert all(f.occurrences == 2 for f in opened)
    assert not any(k == "data_drift" and s in ("income", "country") for k, s in kinds)

    drift = next(f for f in opened if f.kind == "data_drift")
    assert drift.evidence["test"] == "ks" and drift.evidence["effect"]["wasserstein"] > 0.3
    assert len(drift.evidence["sample_prediction_ids"]) == 5
    assert drift.evidence["baseline"]["type"] == "first_events"
    with migrated_engine.connect() as connection:
        report = finding_report_path(connection, drift.id)
    assert report and Path(report).read_text().lstrip().lower().startswith("<!doctype html")

    # the next hour is healthy again: every finding resolves
    _write_hours(migrated_engine, stream, T0, [stable])
    clock.now_ns = T0 + HOUR_NS
    worker.run_once()
    assert _active(migrated_engine, "fraud") == []
    resolved = _active(migrated_engine, "fraud", statuses=("resolved",))
    assert {f.id for f in resolved} == {f.id for f in opened}


@pytest.mark.slow
def test_stable_streams_raise_no_findings_and_workers_share_the_models(migrated_engine, tmp_path):
    models = [f"model-{i}" for i in range(4)]
    for i, model in enumerate(models):
        _write_hours(migrated_engine, Stream(model, seed=10 + i), T0 - 3 * HOUR_NS, [{}, {}, {}])
    clock = Clock(T0)
    workers = [_worker(migrated_engine, tmp_path, clock, worker_id=f"w{i}") for i in range(3)]
    claimed: list[str] = []
    lock = threading.Lock()

    def run(worker: AnalyzerWorker) -> None:
        changes = worker.run_once()
        with lock:
            claimed.extend(
                {c.observation.model for c in changes if c.observation} if changes else []
            )

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with migrated_engine.connect() as connection:
        runs = connection.execute(
            sa.text("SELECT model, last_run_ns, owner FROM analyzer_leases")
        ).all()
    assert sorted(r.model for r in runs) == models
    assert all(r.last_run_ns is not None and r.owner is None for r in runs)
    assert _active(migrated_engine) == []

    # within the interval nobody analyses a model again
    clock.now_ns += 30 * NS
    assert all(w.run_once() == [] for w in workers)
    clock.now_ns += 31 * NS
    for worker in workers:
        worker.run_once()
    assert _active(migrated_engine) == []


def test_worker_thread_starts_and_stops_by_name(migrated_engine, tmp_path):
    worker = _worker(migrated_engine, tmp_path, Clock(T0))
    worker.start()
    names = [t.name for t in threading.enumerate()]
    worker.stop(timeout=10)
    assert any(name.startswith("inferloop-analyzer-") for name in names)
    assert worker.runs >= 1 and worker.failures == 0


def _observation(subject: str, kind: str = "data_drift"):
    from inferloop.analyzer import Observation

    return Observation("m", "v1", kind, subject, "warning", f"{subject} moved", {"x": 1}, 0, 10)


def test_finding_lifecycle_confirms_resolves_dismisses_and_respects_scope(migrated_engine):
    from inferloop.analyzer import apply_observations

    def run(now, observations, scopes=(("v1", "drift"),)):
        with migrated_engine.begin() as connection:
            return apply_observations(
                connection,
                "m",
                observations,
                evaluated=scopes,
                now_ns=now,
                confirm_runs=2,
                confirm_after_ns=100,
            )

    run(0, [_observation("age"), _observation("income")])
    run(10, [_observation("age"), _observation("income")])  # seen twice, but too soon
    assert {f.status for f in _active(migrated_engine, "m")} == {"pending"}
    run(100, [_observation("age")])  # income cleared while pending: dismissed
    assert [(f.subject, f.status, f.occurrences) for f in _active(migrated_engine, "m")] == [
        ("age", "open", 3)
    ]
    assert [f.subject for f in _active(migrated_engine, "m", statuses=("dismissed",))] == ["income"]
    run(200, [], scopes=[("v1", "performance")])  # drift not evaluated: nothing clears
    assert [f.status for f in _active(migrated_engine, "m")] == ["open"]
    changes = run(300, [])
    assert [(c.before, c.after) for c in changes] == [("open", "resolved")]
    run(400, [_observation("age")])  # a new episode is a new finding
    assert (
        len(_active(migrated_engine, "m", statuses=("pending", "open", "resolved", "dismissed")))
        == 3
    )


def test_a_model_that_stops_serving_raises_a_throughput_finding(migrated_engine, tmp_path):
    _write_hours(migrated_engine, Stream("quiet", seed=21), T0 - 3 * HOUR_NS, [{}, {}, {}])
    config = AnalyzerConfig(window_s=3600, baseline_events=500, confirm_runs=1, confirm_after_s=0)
    worker = AnalyzerWorker(
        Settings(data_dir=tmp_path / "data"),
        migrated_engine,
        config=config,
        clock=lambda: T0 + HOUR_NS,
    )
    worker.run_once()
    findings = _active(migrated_engine, "quiet")
    assert [(f.kind, f.subject) for f in findings] == [("throughput_change", "throughput_per_s")]
    assert findings[0].evidence["current"] == 0.0 and findings[0].evidence["change"] == -1.0
