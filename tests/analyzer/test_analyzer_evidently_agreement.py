"""Our vectorised drift tests give Evidently's statistics (relative 1e-6) and verdicts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from analyzer_evidently_oracle import evidently_drift

from inferloop.analyzer import DriftOptions, ReferenceProfile, compute_drift, registered_stattests

# Runs Evidently itself as the oracle (~30 s in all): in `make test`, not in `make test-fast`.
pytestmark = pytest.mark.slow

NUMERICAL = ["num_same", "num_shift", "num_four", "num_two", "num_wide_tail"]
CATEGORICAL = ["cat_same", "cat_shift", "bin_same", "bin_shift", "cat_new_value"]
# Evidently names the method by display name when it chose it, by name when it was given.
DISPLAY_TO_NAME = {t.display_name: name for name, t in registered_stattests().items()}
DISPLAY_TO_NAME |= {name: name for name in registered_stattests()}


def _frame(
    rng: np.random.Generator, n: int, drifted: bool, with_gaps: bool = False
) -> pd.DataFrame:
    shift = 0.25 if drifted else 0.0
    four = [0.0, 1.0, 2.0, 3.0]
    frame = pd.DataFrame(
        {
            "num_same": rng.normal(0, 1, n),
            "num_shift": rng.normal(shift, 1 + shift, n),
            "num_four": rng.choice(four, n, p=[0.4, 0.3, 0.2, 0.1] if drifted else [0.25] * 4),
            "num_two": rng.choice([0.0, 1.0], n, p=[0.5 + shift / 2, 0.5 - shift / 2]),
            "num_wide_tail": rng.standard_t(3, n) * (1.3 if drifted else 1.0),
            "cat_same": rng.choice(list("abcde"), n),
            "cat_shift": rng.choice(
                list("abcde"), n, p=[0.3, 0.25, 0.2, 0.15, 0.1] if drifted else [0.2] * 5
            ),
            "bin_same": rng.choice(["yes", "no"], n),
            "bin_shift": rng.choice(["yes", "no"], n, p=[0.5 + shift / 2, 0.5 - shift / 2]),
            "cat_new_value": rng.choice(list("xyz") + (["w"] if drifted else []), n),
        }
    )
    if with_gaps:
        frame.loc[frame.sample(frac=0.05, random_state=1).index, "num_same"] = np.nan
        # Evidently's dataset-level count cleans ±inf only in columns that also hold NaN
        # (its per-column verdict always cleans them); give num_shift both, so the two agree.
        frame.loc[frame.sample(frac=0.03, random_state=4).index, "num_shift"] = np.nan
        frame.loc[frame.sample(frac=0.01, random_state=2).index, "num_shift"] = -np.inf
        frame.loc[frame.sample(frac=0.05, random_state=3).index, "cat_same"] = None
    return frame


def _assert_same_as_evidently(reference, current, preset_options=None, options=None):
    preset_options = preset_options or {}
    theirs, their_dataset_drift = evidently_drift(
        reference, current, NUMERICAL, CATEGORICAL, **preset_options
    )
    kinds = {c: "numerical" for c in NUMERICAL} | {c: "categorical" for c in CATEGORICAL}
    profile = ReferenceProfile.from_frame(reference, kinds)
    ours = compute_drift(profile, current, options or DriftOptions(mode="evidently"))
    assert {c.column for c in ours.columns} == set(theirs)
    for column in ours.columns:
        method, score, drifted = theirs[column.column]
        assert column.test == DISPLAY_TO_NAME[method], column.column
        assert column.score == pytest.approx(score, rel=1e-6, abs=1e-12), column.column
        assert column.drifted == drifted, column.column
    assert ours.dataset_drift == their_dataset_drift
    return ours


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("drifted", [False, True])
def test_small_reference_uses_ks_chisquare_and_z_like_evidently(seed, drifted):
    rng = np.random.default_rng(seed)
    ours = _assert_same_as_evidently(_frame(rng, 600, False), _frame(rng, 400, drifted))
    assert {c.test for c in ours.columns} == {"ks", "chisquare", "z"}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("drifted", [False, True])
def test_large_reference_uses_wasserstein_and_jensenshannon_like_evidently(seed, drifted):
    rng = np.random.default_rng(seed)
    ours = _assert_same_as_evidently(_frame(rng, 5000, False), _frame(rng, 3000, drifted))
    assert {c.test for c in ours.columns} == {"wasserstein", "jensenshannon"}


def test_small_reference_against_large_window_uses_asymptotic_ks_like_evidently():
    rng = np.random.default_rng(7)
    ours = _assert_same_as_evidently(_frame(rng, 900, False), _frame(rng, 30_000, True))
    assert ours.column("num_shift").test == "ks"


def test_missing_and_infinite_values_are_dropped_like_evidently():
    rng = np.random.default_rng(11)
    _assert_same_as_evidently(
        _frame(rng, 3000, False, with_gaps=True), _frame(rng, 2000, True, with_gaps=True)
    )
    _assert_same_as_evidently(
        _frame(rng, 700, False, with_gaps=True), _frame(rng, 500, True, with_gaps=True)
    )


@pytest.mark.parametrize("method", ["psi", "jensenshannon"])
def test_binned_tests_chosen_per_column_match_evidently(method):
    rng = np.random.default_rng(5)
    per_column = {
        "num_same": method,
        "num_shift": method,
        "num_wide_tail": method,
        "cat_shift": method,
    }
    _assert_same_as_evidently(
        _frame(rng, 2000, False),
        _frame(rng, 1500, True),
        preset_options={"per_column_method": per_column},
        options=DriftOptions(mode="evidently", per_column_test=per_column),
    )


def test_thresholds_and_drift_share_are_honoured_like_evidently():
    rng = np.random.default_rng(3)
    _assert_same_as_evidently(
        _frame(rng, 2000, False),
        _frame(rng, 2000, True),
        preset_options={"num_threshold": 0.05, "cat_threshold": 0.03, "drift_share": 0.2},
        options=DriftOptions(
            mode="evidently", num_threshold=0.05, cat_threshold=0.03, drift_share=0.2
        ),
    )


@pytest.mark.parametrize(
    ("reference_rows", "current_rows"),
    [(1000, 10_000), (1001, 10_001), (1000, 10_001)],
    ids=["ks-exact-at-the-limits", "distances-just-above", "ks-asymptotic-just-above"],
)
def test_selection_boundaries_match_evidently(reference_rows, current_rows):
    rng = np.random.default_rng(reference_rows + current_rows)
    ours = _assert_same_as_evidently(
        _frame(rng, reference_rows, False), _frame(rng, current_rows, True)
    )
    expected = "ks" if reference_rows <= 1000 else "wasserstein"
    assert ours.column("num_same").test == expected


@pytest.mark.parametrize("drifted", [False, True])
def test_large_samples_match_evidently(drifted):
    rng = np.random.default_rng(99)
    _assert_same_as_evidently(_frame(rng, 60_000, False), _frame(rng, 40_000, drifted))
