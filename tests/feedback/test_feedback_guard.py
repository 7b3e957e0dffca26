"""The guarded rollout: repeated checks keep false rollbacks at α, regressions are caught,
too little data is inconclusive, missing intervals are no evidence, decisions carry their
statistics. Full figures: bench/feedback_guard.py (10,000 A/A rollouts)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from inferloop.feedback import (
    ArmCounts,
    IntervalCounts,
    MetricOptions,
    Outcome,
    RolloutGuard,
    SequentialBernoulliTest,
)
from inferloop.feedback._guard_calibration import (
    Arm,
    calibration,
    guard_paths,
    power,
    simulate_counts,
    slow_rate_after_shift,
)

ALPHA = 0.05


def _intervals(counts: dict[str, np.ndarray], rollout: int):
    for look in range(counts["candidate_calls"].shape[1]):
        arms = {
            prefix: ArmCounts(
                **{
                    f: int(counts[f"{prefix}_{f}"][rollout, look])
                    for f in ArmCounts.__annotations__
                }
            )
            for prefix in ("candidate", "live")
        }
        yield IntervalCounts(**arms)


def _arm(calls=500, errors=10, slow=25, labeled=150, correct=135) -> ArmCounts:
    return ArmCounts(calls=calls, errors=errors, slow=slow, labeled=labeled, correct=correct)


def test_aa_rollouts_checked_every_interval_keep_false_rollbacks_within_alpha():
    figures = calibration(300, 20, seed=7)
    low, _high = figures["false_rollback"]["ci95"]
    assert low <= ALPHA, figures
    assert figures["false_rollback"]["rate"] <= ALPHA


def test_the_naive_fixed_alpha_retest_inflates_false_rollbacks_on_the_same_rollouts():
    figures = calibration(300, 20, seed=7)
    assert figures["naive_after_5_looks"]["ci95"][0] > ALPHA
    assert figures["naive_after_all_looks"]["rate"] > 0.18
    assert figures["naive_after_all_looks"]["rate"] > 5 * figures["false_rollback"]["rate"]


@pytest.mark.parametrize(
    ("candidate", "metric", "median_within", "p90_within"),
    [
        (Arm(slow_rate=slow_rate_after_shift(0.20)), "latency_exceedance", 3, 4),
        (Arm(error_rate=0.04), "error_rate", 5, 7),
        (Arm(accuracy=0.87), "accuracy", 18, 35),
    ],
    ids=["p95_latency_plus_20pct", "error_rate_plus_2pts", "accuracy_minus_3pts"],
)
def test_an_injected_regression_is_rolled_back_within_the_stated_looks(
    candidate, metric, median_within, p90_within
):
    figures = power(candidate, 300, 60, seed=11)
    assert figures["caught"] >= 0.9, figures
    assert figures["looks_median"] <= median_within, figures
    assert figures["looks_p90"] <= p90_within, figures
    assert figures["caught_by"][metric] >= 0.9


def test_the_vectorised_harness_decides_like_the_guard_rollout_by_rollout():
    counts = simulate_counts(
        np.random.default_rng(3), 12, 25, candidate=Arm(error_rate=0.03), live=Arm()
    )
    paths = guard_paths(counts)
    for rollout in range(12):
        guard = RolloutGuard()
        outcomes = [guard.check(interval).outcome for interval in _intervals(counts, rollout)]
        expected = [
            Outcome.FAIL if f else Outcome.PASS if p else Outcome.INCONCLUSIVE
            for f, p in zip(paths.failed[rollout], paths.passed[rollout], strict=True)
        ]
        assert outcomes == expected


def test_too_little_traffic_is_inconclusive_even_when_the_candidate_looks_worse():
    guard = RolloutGuard()
    decision = guard.check(
        IntervalCounts(
            _arm(calls=50, errors=20, slow=5, labeled=15, correct=5),
            _arm(calls=50, errors=0, slow=2, labeled=15, correct=14),
        )
    )
    assert decision.outcome is Outcome.INCONCLUSIVE
    assert all(m.status == "insufficient" for m in decision.metrics)
    assert "too little data" in decision.reason


def test_label_coverage_below_the_floor_keeps_accuracy_out_and_the_rollout_waiting():
    guard = RolloutGuard(label_coverage_floor=0.2)
    for _ in range(40):
        decision = guard.check(
            IntervalCounts(_arm(labeled=50, correct=25), _arm(labeled=50, correct=45))
        )
    accuracy = decision.metric("accuracy")
    assert decision.label_coverage == {"candidate": 0.1, "live": 0.1}
    assert not accuracy.coverage_ok and accuracy.status == "insufficient"
    assert decision.outcome is Outcome.INCONCLUSIVE  # a 40-point drop, but labels too sparse


def test_missing_intervals_are_not_counted_as_evidence():
    with_gaps, without = RolloutGuard(), RolloutGuard()
    interval = IntervalCounts(_arm(errors=12), _arm(errors=10))
    for _ in range(5):
        a = with_gaps.check(interval)
        with_gaps.check(None)
        with_gaps.check(IntervalCounts(ArmCounts(calls=0), _arm()))  # the candidate got nothing
        b = without.check(interval)
    assert (a.looks, a.empty_intervals, a.check) == (5, 8, 13)
    assert a.metrics == b.metrics  # same counts, same statistics: gaps added nothing
    empty = RolloutGuard().check(None)
    assert empty.outcome is Outcome.INCONCLUSIVE
    assert empty.metric("error_rate").candidate_rate is None  # no traffic is not a rate of 0
    assert math.isnan(empty.metric("error_rate").test.difference)


def test_an_identical_candidate_is_promoted_once_harm_is_excluded_or_the_budget_is_spent():
    guard = RolloutGuard(accuracy=None, latency=MetricOptions(min_effect=0.02, budget=2_000))
    outcomes = [guard.check(IntervalCounts(_arm(), _arm())).outcome for _ in range(30)]
    assert outcomes[0] is Outcome.INCONCLUSIVE
    assert Outcome.PASS in outcomes and Outcome.FAIL not in outcomes
    decision = guard.check(IntervalCounts(_arm(), _arm()))
    assert {m.status for m in decision.metrics} <= {"harm_excluded", "budget_reached"}


def test_the_decision_record_carries_the_statistics_test_values_and_outcome():
    guard = RolloutGuard()
    for _ in range(6):
        decision = guard.check(IntervalCounts(_arm(errors=25), _arm(errors=10)))
    assert decision.outcome is Outcome.FAIL
    assert decision.reason == "candidate worse on error_rate"
    record = json.loads(json.dumps(decision.to_dict()))  # storable as JSON evidence
    assert record["outcome"] == "fail" and record["alpha"] == ALPHA and record["looks"] == 6
    errors = next(m for m in record["metrics"] if m["name"] == "error_rate")
    assert errors["candidate_successes"] == 150 and errors["live_trials"] == 3000
    assert errors["alpha"] == pytest.approx(ALPHA / 3)
    test = errors["test"]
    assert test["rejected"] and test["max_e_value"] >= test["threshold"] == pytest.approx(60)
    assert test["p_value"] == pytest.approx(1 / test["max_e_value"])
    assert test["lower_bound"] > 0 and test["difference"] == pytest.approx(0.03)
    assert {"z", "std_error", "e_value", "harm_e_value", "upper_bound"} <= test.keys()


def test_the_e_value_and_the_confidence_bound_agree_on_rejection():
    test = SequentialBernoulliTest(worse="lower", min_effect=0.03, min_samples=100)
    for _ in range(10):
        test.update(130, 150, 136, 150)  # accuracy 86.7% vs 90.7%
        result = test.result(0.05)
        assert (result.e_value >= result.threshold) == (result.lower_bound > 0)
        assert (result.harm_e_value >= result.threshold) == (result.upper_bound < 0.03)
    assert result.difference == pytest.approx(0.04)


def test_options_are_validated_at_construction():
    with pytest.raises(ValueError):
        SequentialBernoulliTest(worse="higher", min_effect=0.01, tolerance=0.02)
    with pytest.raises(ValueError):
        RolloutGuard(alpha=0, error_rate=MetricOptions(min_effect=0.01))
    with pytest.raises(ValueError):
        ArmCounts(calls=10, errors=11)
