"""Injected drift, latency regressions, error bursts, accuracy drops and change points are
detected; the same streams without them raise nothing, over many seeds."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from inferloop.analyzer import (
    DriftOptions,
    PerfOptions,
    PerfWindow,
    ReferenceProfile,
    alarming_columns,
    classification_metrics,
    compare_performance,
    compare_quality,
    compare_versions,
    compute_drift,
    cusum,
    data_quality,
    embedding_drift,
    page_hinkley,
    regression_metrics,
    roc_auc,
)

SEEDS = range(40)


def _features(
    rng: np.random.Generator, n: int, shift: float = 0.0, cat_shift: bool = False
) -> pl.DataFrame:
    shares = [0.4, 0.3, 0.2, 0.1] if cat_shift else [0.25] * 4
    return pl.DataFrame(
        {
            "age": rng.normal(40 + 10 * shift, 10, n),
            "income": rng.lognormal(10, 0.5, n),
            "score": rng.uniform(0, 1, n),
            "country": rng.choice(["fr", "de", "es", "it"], n, p=shares),
            "is_new": rng.choice(["yes", "no"], n),
        }
    )


def test_stable_feature_streams_raise_no_drift_alarm_over_many_seeds():
    alarms = 0
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        profile = ReferenceProfile.from_frame(_features(rng, 3000))
        for _ in range(3):
            report = compute_drift(profile, _features(rng, 1000))
            alarms += bool(alarming_columns(report))
    assert alarms == 0  # expected count at the default family_alpha=0.001: 0.12


@pytest.mark.parametrize("seed", range(5))
def test_injected_numerical_and_categorical_drift_is_detected(seed):
    rng = np.random.default_rng(seed)
    profile = ReferenceProfile.from_frame(_features(rng, 3000))
    report = compute_drift(profile, _features(rng, 1000, shift=0.5, cat_shift=True))
    assert {c.column for c in alarming_columns(report)} == {"age", "country"}


def test_calibrated_mode_ignores_trivial_shift_on_a_huge_window():
    rng = np.random.default_rng(1)
    profile = ReferenceProfile.from_frame(_features(rng, 100_000))
    report = compute_drift(profile, _features(rng, 400_000, shift=0.02))
    assert report.column("age").drifted  # significant: the shift is real...
    assert not alarming_columns(report)  # ...but 0.02 std is below the effect floor


def test_evidently_mode_alarms_are_its_verdicts():
    rng = np.random.default_rng(2)
    profile = ReferenceProfile.from_frame(_features(rng, 3000))
    options = DriftOptions(mode="evidently")
    report = compute_drift(profile, _features(rng, 1000, shift=0.5), options)
    assert [c.column for c in alarming_columns(report, options)] == [
        c.column for c in report.columns if c.drifted
    ]
    assert report.column("age").test == "wasserstein"


def _calls(rng, n, latency_ms=20.0, error_rate=0.01, minutes=30, tail=1.0, device=True):
    latency = rng.lognormal(np.log(latency_ms), 0.3 * tail, n)
    start = 1_700_000_000 * 10**9 + np.sort(rng.integers(0, minutes * 60 * 10**9, n))
    return pl.DataFrame(
        {
            "latency_ns": (latency * 1e6).astype(np.int64),
            "device_time_ns": (latency * 0.6e6).astype(np.int64) if device else [None] * n,
            "status": np.where(rng.random(n) < error_rate, "error", "ok"),
            "start_time_ns": start,
        }
    )


def test_stable_performance_raises_no_regression_over_many_seeds():
    regressions = 0
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        base = PerfWindow.from_events(_calls(rng, 3000))
        current = PerfWindow.from_events(_calls(rng, 3000))
        regressions += any(c.regressed for c in compare_performance(base, current))
    assert regressions == 0


def test_latency_regression_is_detected_on_the_quantiles_that_moved():
    rng = np.random.default_rng(3)
    base = PerfWindow.from_events(_calls(rng, 3000))
    slower_tail = PerfWindow.from_events(_calls(rng, 3000, tail=2.0))
    regressed = {c.metric for c in compare_performance(base, slower_tail) if c.regressed}
    assert {"latency_p99_ms", "latency_p95_ms", "device_p99_ms"} <= regressed
    assert "latency_p50_ms" not in regressed


def test_small_latency_increase_below_minimum_effect_does_not_alert():
    rng = np.random.default_rng(4)
    base = PerfWindow.from_events(_calls(rng, 20_000))
    slightly = PerfWindow.from_events(_calls(rng, 20_000, latency_ms=21.0))
    checks = {c.metric: c for c in compare_performance(base, slightly)}
    assert checks["latency_p50_ms"].p_value < 0.01
    assert not any(c.regressed for c in checks.values())


def test_error_burst_is_detected():
    rng = np.random.default_rng(5)
    base = PerfWindow.from_events(_calls(rng, 3000))
    burst = PerfWindow.from_events(_calls(rng, 3000, error_rate=0.06))
    assert {c.metric for c in compare_performance(base, burst) if c.regressed} == {"error_rate"}


def test_throughput_drop_is_detected():
    rng = np.random.default_rng(6)
    base = PerfWindow.from_events(_calls(rng, 6000, minutes=30))
    drop = PerfWindow.from_events(_calls(rng, 2000, minutes=30))
    regressed = [c for c in compare_performance(base, drop) if c.regressed]
    assert [c.metric for c in regressed] == ["throughput_per_s"]
    assert regressed[0].change == pytest.approx(-2 / 3, abs=0.05)


def test_candidate_version_comparison_flags_only_a_worse_candidate():
    rng = np.random.default_rng(7)
    live = PerfWindow.from_events(_calls(rng, 2000))
    same = PerfWindow.from_events(_calls(rng, 500, minutes=5))
    worse = PerfWindow.from_events(_calls(rng, 500, latency_ms=40.0, minutes=5))
    assert compare_versions(live, same).verdict == "not_worse"
    result = compare_versions(live, worse)
    assert result.verdict == "worse"
    assert "latency_p50_ms" in {c.metric for c in result.regressions}
    assert (
        compare_versions(live, PerfWindow.from_events(_calls(rng, 10))).verdict
        == "insufficient_data"
    )


def _minute_series(rng, minutes=600, shift_at=None, shift=0.0):
    series = rng.normal(100.0, 5.0, minutes)
    if shift_at is not None:
        series[shift_at:] += shift
    return series


@pytest.mark.parametrize("detector", [cusum, page_hinkley])
def test_change_point_found_soon_after_a_shift(detector):
    rng = np.random.default_rng(8)
    found = detector(_minute_series(rng, shift_at=300, shift=10.0))
    assert found and 300 <= found[0].index <= 320
    assert found[0].direction == "up"


@pytest.mark.parametrize("detector", [cusum, page_hinkley])
def test_change_point_detectors_stay_quiet_on_stable_series(detector):
    alarms = sum(len(detector(_minute_series(np.random.default_rng(seed)))) for seed in SEEDS)
    points = len(SEEDS) * (600 - 120)
    # measured over 564,000 points: one alarm per ~8,800 (CUSUM) / ~25,600 (Page-Hinkley)
    assert alarms <= points / 4000


def test_classifier_metrics_match_their_definitions():
    truth = np.array([1, 1, 1, 0, 0, 0, 1, 0])
    pred = np.array([1, 1, 0, 0, 1, 0, 1, 0])
    metrics = classification_metrics(truth, pred, y_score=[0.9, 0.8, 0.4, 0.2, 0.6, 0.1, 0.7, 0.3])
    assert metrics["accuracy"] == pytest.approx(6 / 8)
    assert metrics["precision"] == pytest.approx(3 / 4)
    assert metrics["recall"] == pytest.approx(3 / 4)
    assert metrics["f1"] == pytest.approx(3 / 4)
    assert metrics["roc_auc"] == pytest.approx(15 / 16)
    assert roc_auc(np.array([True, False]), np.array([0.1, 0.9])) == 0.0
    assert regression_metrics([1, 2, 3], [2, 2, 5]) == pytest.approx(
        {"mae": 1.0, "rmse": np.sqrt(5 / 3)}
    )


def _labelled(rng, n, accuracy):
    truth = rng.integers(0, 2, n)
    pred = np.where(rng.random(n) < accuracy, truth, 1 - truth)
    return truth, pred


def test_accuracy_drop_is_a_finding_and_stable_accuracy_is_not():
    drops = 0
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        drops += compare_quality(
            "classification", _labelled(rng, 1000, 0.9), _labelled(rng, 1000, 0.9)
        )[0].regressed
    assert drops == 0
    rng = np.random.default_rng(9)
    check = compare_quality("classification", _labelled(rng, 1000, 0.9), _labelled(rng, 1000, 0.8))[
        0
    ]
    assert check.regressed and check.detail["current_f1"] < check.detail["baseline_f1"]


def test_regressor_error_increase_is_a_finding():
    rng = np.random.default_rng(10)
    truth = rng.normal(size=800)
    check = compare_quality(
        "regression",
        (truth, truth + rng.normal(0, 1, 800)),
        (truth, truth + rng.normal(0, 1.5, 800)),
    )[0]
    assert check.metric == "mae" and check.regressed


def test_data_quality_finds_missing_values_new_categories_and_out_of_range():
    rng = np.random.default_rng(11)
    profile = ReferenceProfile.from_frame(_features(rng, 3000))
    current = _features(rng, 1000).with_columns(
        pl.when(pl.int_range(pl.len()) < 100).then(None).otherwise(pl.col("age")).alias("age"),
        pl.when(pl.int_range(pl.len()) < 50)
        .then(pl.lit("pt"))
        .otherwise(pl.col("country"))
        .alias("country"),
        pl.when(pl.int_range(pl.len()) < 30)
        .then(pl.lit(7.5))
        .otherwise(pl.col("score"))
        .alias("score"),
    )
    found = {(i.column, i.check) for i in data_quality(profile, current)}
    assert found == {
        ("age", "missing_values"),
        ("country", "new_categories"),
        ("score", "out_of_range"),
    }
    assert data_quality(profile, _features(rng, 1000)) == []


@pytest.mark.parametrize("method", ["ratio", "calibrated"])
def test_embedding_drift_detected_when_a_subspace_moves(method):
    rng = np.random.default_rng(12)
    reference = rng.normal(size=(2000, 16))
    stable = embedding_drift(reference, rng.normal(size=(1000, 16)), method=method)
    moved = rng.normal(size=(1000, 16))
    moved[:, :6] += 0.5
    shifted = embedding_drift(reference, moved, method=method)
    assert not stable.drifted
    assert shifted.drifted and set(shifted.components) == {f"e{i}" for i in range(6)}


PERF_OPTIONS_VALIDATION = [dict(alpha=0), dict(quantiles=(1.5,)), dict(min_latency_increase=-1)]


@pytest.mark.parametrize("bad", PERF_OPTIONS_VALIDATION)
def test_perf_options_refuse_nonsense(bad):
    with pytest.raises(ValueError):
        PerfOptions(**bad)


def test_windows_with_unexpected_types_are_compared_not_crashed_on():
    rng = np.random.default_rng(13)
    profile = ReferenceProfile.from_frame(_features(rng, 2000))
    odd = _features(rng, 500).with_columns(
        pl.col("age").cast(pl.String),  # numbers sent as strings
        pl.Series("is_new", rng.integers(0, 2, 500)),  # labels sent as integers
    )
    report = compute_drift(profile, odd)
    garbled = odd.with_columns(
        pl.when(pl.int_range(pl.len()) < 50)
        .then(pl.lit("n/a"))
        .otherwise(pl.col("age"))
        .alias("age")
    )
    assert compute_drift(profile, garbled).column("age").current_rows == 450
    assert ("age", "missing_values") in {
        (i.column, i.check) for i in data_quality(profile, garbled)
    }
    assert report.column("age").current_rows == 500
    assert not report.column("age").drifted  # the strings parsed back into the same ages
    assert report.column("is_new").current_rows == 500 and report.column("is_new").drifted
    issues = {(i.column, i.check) for i in data_quality(profile, odd)}
    assert ("is_new", "new_categories") in issues
