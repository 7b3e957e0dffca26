"""The calibrated default tests alarm at their nominal rate on data without drift;
Evidently's goodness-of-fit chi-square does not (which is why it is not the default).
Full figures: bench/analyzer_false_alarms.py (2,000 simulations each)."""

from __future__ import annotations

import pytest

import inferloop.analyzer as analyzer
from inferloop.analyzer import DriftOptions, get_stattest, register_stattest
from inferloop.analyzer._calibration import (
    categorical_sampler,
    false_alarm_rate,
    normal_sampler,
    poisson_sampler,
    rounded_sampler,
)

SIMULATIONS = 800  # standard error of a 5% rate: 0.77 points


@pytest.mark.parametrize(
    ("test", "kind", "sampler", "n_reference", "n_current"),
    [
        ("ks", "numerical", normal_sampler, 800, 800),
        ("ks", "numerical", normal_sampler, 2000, 12000),
        ("chi2_contingency", "categorical", categorical_sampler(5), 1000, 1000),
        ("chi2_contingency", "categorical", categorical_sampler(12), 3000, 400),
        ("chi2_contingency", "numerical", poisson_sampler, 1000, 1000),
        ("chi2_contingency", "numerical", rounded_sampler, 1500, 700),
        ("z", "categorical", categorical_sampler(2), 1000, 1000),
    ],
)
def test_default_calibrated_tests_alarm_at_the_nominal_rate(
    test, kind, sampler, n_reference, n_current
):
    result = false_alarm_rate(
        test,
        kind,
        sampler,
        scenario="no drift",
        n_reference=n_reference,
        n_current=n_current,
        simulations=SIMULATIONS,
        seed=42,
    )
    assert abs(result.rate - result.nominal) <= 3 * result.standard_error


def test_evidently_chisquare_over_alarms_without_drift():
    result = false_alarm_rate(
        "chisquare",
        "categorical",
        categorical_sampler(12),
        scenario="no drift",
        n_reference=1000,
        n_current=1000,
        simulations=300,
        seed=42,
    )
    assert result.rate > 0.4  # ~54% measured with 2,000 simulations


def test_calibrated_mode_compares_discrete_numbers_value_by_value():
    import numpy as np

    from inferloop.analyzer import ColumnSample, select_stattest

    rng = np.random.default_rng(0)
    counts = ColumnSample(rng.poisson(5.0, 1000), "numerical")
    continuous = ColumnSample(rng.normal(size=1000), "numerical")
    assert select_stattest(counts, counts, "numerical", "calibrated") == "chi2_contingency"
    assert select_stattest(continuous, continuous, "numerical", "calibrated") == "ks"
    assert select_stattest(counts, counts, "numerical", "evidently") == "ks"  # Evidently's rule


def test_registry_exposes_names_and_default_thresholds():
    assert get_stattest("wasserstein").default_threshold == 0.1
    assert get_stattest("ks").score_kind == "p_value"
    with pytest.raises(KeyError):
        get_stattest("no-such-test")
    with pytest.raises(KeyError):
        DriftOptions(num_test="no-such-test")


def test_a_registered_custom_test_can_be_chosen_per_column():
    from inferloop.analyzer import ReferenceProfile, TestResult, compute_drift

    @register_stattest("mean_gap", "absolute mean gap", ("numerical",), 0.5, "distance")
    def mean_gap(ref, cur, kind, threshold):
        gap = abs(ref.mean - cur.mean)
        return TestResult(gap, gap, gap >= threshold)

    import polars as pl

    profile = ReferenceProfile.from_frame(pl.DataFrame({"x": [0.0, 1.0, 2.0]}))
    report = compute_drift(
        profile, pl.DataFrame({"x": [3.0, 4.0]}), DriftOptions(per_column_test={"x": "mean_gap"})
    )
    assert report.column("x").test == "mean_gap" and report.column("x").drifted


def test_all_names_are_exported_and_exist():
    for name in analyzer.__all__:
        assert hasattr(analyzer, name), name
    public = {n for n in vars(analyzer) if not n.startswith("_")}
    assert public - set(analyzer.__all__) == set()
