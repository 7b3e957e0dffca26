"""Drift computation: Inferloop's vectorised tests against Evidently's DataDriftPreset.

20 numerical + 5 categorical features, a 100k-row reference and current windows of 100k
and 1M rows, some features drifted. Evidently runs on the 100k window (``--evidently-1m``
adds the 1M one); a plain scipy loop over the same statistics is a second baseline. The
reference profile is built once and reused for every window, as the analyzer does.

    .venv/bin/python bench/analyzer_drift.py [--evidently-1m] [--seed N]

Last line: one JSON object of figures.
"""

from __future__ import annotations

import argparse
import json
import re
import time
import warnings

import numpy as np
import pandas as pd
import polars as pl
from scipy import stats
from scipy.spatial import distance

from inferloop.analyzer import DriftOptions, ReferenceProfile, compute_drift

NUMERICAL = [f"num_{i:02d}" for i in range(20)]
CATEGORICAL = [f"cat_{i}" for i in range(5)]
CATEGORIES = [f"c{i:02d}" for i in range(8)]


def make_frame(rng: np.random.Generator, rows: int, drifted: bool) -> pl.DataFrame:
    columns: dict[str, np.ndarray] = {}
    for i, name in enumerate(NUMERICAL):
        # a mix of shapes; when drifted, every other feature moves by 0.05..0.3 std
        shift = (0.03 * (i % 10)) if drifted and i % 2 == 0 else 0.0
        if i % 3 == 0:
            columns[name] = rng.normal(shift, 1.0, rows)
        elif i % 3 == 1:
            columns[name] = rng.exponential(1.0 + shift, rows)
        else:
            columns[name] = rng.gamma(2.0, 1.0, rows) + shift
    base = np.full(len(CATEGORIES), 1 / len(CATEGORIES))
    for i, name in enumerate(CATEGORICAL):
        shares = base
        if drifted and i < 3:
            shares = base * np.linspace(1 - 0.4 * i, 1 + 0.4 * i, len(CATEGORIES))
            shares = shares / shares.sum()
        columns[name] = rng.choice(CATEGORIES, rows, p=shares)
    return pl.DataFrame(columns)


def evidently_run(reference: pd.DataFrame, current: pd.DataFrame) -> tuple[float, dict, bool]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=NUMERICAL, categorical_columns=CATEGORICAL)
    started = time.perf_counter()
    snapshot = Report([DataDriftPreset()], include_tests=True).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    payload = snapshot.dict()
    elapsed = time.perf_counter() - started
    verdicts, dataset = {}, False
    for test in payload["tests"]:
        found = re.fullmatch(r"Value Drift for column (.+)", test["name"])
        if found:
            verdicts[found.group(1)] = test["status"] == "FAIL"
        elif test["name"].startswith("Share of Drifted Columns"):
            dataset = test["status"] == "FAIL"
    return elapsed, verdicts, dataset


def scipy_loop(reference: pl.DataFrame, current: pl.DataFrame) -> float:
    """The same statistics, one scipy call per column (no cached reference)."""
    started = time.perf_counter()
    for name in NUMERICAL:
        ref, cur = reference[name].to_numpy(), current[name].to_numpy()
        stats.wasserstein_distance(ref, cur) / max(float(np.std(ref)), 0.001)
    for name in CATEGORICAL:
        ref_counts = dict(reference[name].value_counts().iter_rows())
        cur_counts = dict(current[name].value_counts().iter_rows())
        keys = list(ref_counts.keys() | cur_counts.keys())
        distance.jensenshannon(
            [ref_counts.get(k, 0) for k in keys], [cur_counts.get(k, 0) for k in keys]
        )
    return time.perf_counter() - started


def timed(fn, repeat: int = 3):
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evidently-1m", action="store_true", help="also run Evidently on 1M rows")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    rng = np.random.default_rng(args.seed)
    reference = make_frame(rng, 100_000, drifted=False)
    windows = {"100k": make_frame(rng, 100_000, True), "1m": make_frame(rng, 1_000_000, True)}
    kinds = {c: "numerical" for c in NUMERICAL} | {c: "categorical" for c in CATEGORICAL}

    profile_s, profile = timed(lambda: ReferenceProfile.from_frame(reference, kinds), repeat=1)
    figures: dict[str, float | int | bool] = {
        "reference_rows": 100_000,
        "profile_s": round(profile_s, 4),
    }
    reference_pd = reference.to_pandas()
    for label, window in windows.items():
        compat_s, ours = timed(
            lambda w=window: compute_drift(profile, w, DriftOptions(mode="evidently"))
        )
        calibrated_s, _ = timed(lambda w=window: compute_drift(profile, w, DriftOptions()))
        figures[f"ours_evidently_mode_{label}_s"] = round(compat_s, 4)
        figures[f"ours_calibrated_{label}_s"] = round(calibrated_s, 4)
        figures[f"ours_drifted_columns_{label}"] = ours.drifted_count
        if label == "100k" or args.evidently_1m:
            scipy_s = scipy_loop(reference, window)
            evidently_s, verdicts, dataset = evidently_run(reference_pd, window.to_pandas())
            agree = sum(c.drifted == verdicts[c.column] for c in ours.columns)
            figures[f"scipy_loop_{label}_s"] = round(scipy_s, 4)
            figures[f"evidently_{label}_s"] = round(evidently_s, 4)
            figures[f"speedup_vs_evidently_{label}"] = round(evidently_s / compat_s, 1)
            figures[f"speedup_incl_profile_vs_evidently_{label}"] = round(
                evidently_s / (compat_s + profile_s), 1
            )
            figures[f"speedup_vs_scipy_loop_{label}"] = round(scipy_s / compat_s, 1)
            figures[f"verdict_agreement_{label}"] = agree / len(ours.columns)
            figures[f"dataset_drift_agrees_{label}"] = ours.dataset_drift == dataset
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
