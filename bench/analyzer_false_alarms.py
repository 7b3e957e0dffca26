"""False-alarm rates of the drift tests on data without drift (calibration check).

Each default test of the calibrated mode (K-S, chi-square contingency, Z) and, for
contrast, Evidently's goodness-of-fit chi-square, on pairs of samples drawn from one
distribution. A calibrated test alarms at its nominal 5%; the budget is one point.
Also measured: the analyzer's alarm rule on whole no-drift windows (25 features).

    .venv/bin/python bench/analyzer_false_alarms.py [--simulations 2000] [--windows 300]

Last line: one JSON object of figures.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import polars as pl
from inferloop.analyzer import DriftOptions, ReferenceProfile, alarming_columns, compute_drift
from inferloop.analyzer._calibration import categorical_sampler, false_alarm_rate, normal_sampler

SCENARIOS = [
    # (test, kind, sampler, scenario, n_reference, n_current)
    ("ks", "numerical", normal_sampler, "normal", 1000, 1000),
    ("ks", "numerical", normal_sampler, "normal", 5000, 20000),
    ("chi2_contingency", "categorical", categorical_sampler(5), "5 categories", 1000, 1000),
    ("chi2_contingency", "categorical", categorical_sampler(12), "12 categories", 1000, 1000),
    ("chi2_contingency", "categorical", categorical_sampler(12), "12 categories", 5000, 500),
    ("z", "categorical", categorical_sampler(2), "binary", 1000, 1000),
    ("z", "categorical", categorical_sampler(2), "binary", 5000, 500),
    ("chisquare", "categorical", categorical_sampler(5), "5 categories", 1000, 1000),
    ("chisquare", "categorical", categorical_sampler(12), "12 categories", 1000, 1000),
]


def window_alarm_rate(windows: int, rows: int, seed: int) -> tuple[float, float]:
    """Share of no-drift windows with any alarming column, and with dataset drift."""
    rng = np.random.default_rng(seed)

    def frame(n: int) -> pl.DataFrame:
        data = {f"num_{i}": rng.normal(0, 1, n) for i in range(20)}
        data |= {f"cat_{i}": categorical_sampler(6)(rng, n) for i in range(5)}
        return pl.DataFrame(data)

    profile = ReferenceProfile.from_frame(frame(5000))
    options = DriftOptions()
    with_alarm = with_dataset_drift = 0
    for _ in range(windows):
        report = compute_drift(profile, frame(rows), options)
        with_alarm += bool(alarming_columns(report, options))
        with_dataset_drift += report.dataset_drift
    return with_alarm / windows, with_dataset_drift / windows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulations", type=int, default=2000)
    parser.add_argument("--windows", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    figures: dict[str, float] = {"simulations": args.simulations}
    for test, kind, sampler, scenario, n_ref, n_cur in SCENARIOS:
        result = false_alarm_rate(
            test, kind, sampler, scenario=scenario, n_reference=n_ref, n_current=n_cur,
            simulations=args.simulations, seed=args.seed,
        )
        key = f"{test}|{scenario}|{n_ref}v{n_cur}"
        figures[key] = round(result.rate, 4)
        print(f"{key:45s} false alarms {result.rate:6.1%} (nominal {result.nominal:.0%})")
    for rows in (200, 5000):
        any_alarm, dataset = window_alarm_rate(args.windows, rows, args.seed)
        figures[f"window_alarm_rate|25 features|{rows} rows"] = round(any_alarm, 4)
        figures[f"window_dataset_drift_rate|25 features|{rows} rows"] = round(dataset, 4)
        print(f"windows of {rows} rows: any alarm {any_alarm:.2%}, dataset drift {dataset:.2%}")
    figures["windows"] = args.windows
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
