"""False-alarm rates of the drift tests on data without drift (calibration check).

Each default test of the calibrated mode (K-S, chi-square contingency, Z) and, for
contrast, Evidently's goodness-of-fit chi-square, on pairs of samples drawn from one
distribution. A calibrated test alarms at its nominal 5%; the budget is one point.
Also measured on stable data: the analyzer's drift alarm rule on whole windows (25
features), the performance checks, the accuracy-drop check and the change-point
detectors (points between false alarms).

    .venv/bin/python bench/analyzer_false_alarms.py [--simulations 2000] [--windows 300]

Last line: one JSON object of figures.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import polars as pl

from inferloop.analyzer import (
    DriftOptions,
    PerfWindow,
    ReferenceProfile,
    alarming_columns,
    compare_performance,
    compare_quality,
    compute_drift,
    cusum,
    page_hinkley,
)
from inferloop.analyzer._calibration import (
    categorical_sampler,
    false_alarm_rate,
    normal_sampler,
    poisson_sampler,
    rounded_sampler,
)

SCENARIOS = [
    # (test, kind, sampler, scenario, n_reference, n_current)
    ("ks", "numerical", normal_sampler, "normal", 1000, 1000),
    ("ks", "numerical", normal_sampler, "normal", 5000, 20000),
    ("chi2_contingency", "categorical", categorical_sampler(5), "5 categories", 1000, 1000),
    ("chi2_contingency", "categorical", categorical_sampler(12), "12 categories", 1000, 1000),
    ("chi2_contingency", "categorical", categorical_sampler(12), "12 categories", 5000, 500),
    ("chi2_contingency", "numerical", poisson_sampler, "poisson(5) counts", 1000, 1000),
    ("chi2_contingency", "numerical", rounded_sampler, "normal rounded to 0.1", 1000, 1000),
    ("z", "categorical", categorical_sampler(2), "binary", 1000, 1000),
    ("z", "categorical", categorical_sampler(2), "binary", 5000, 500),
    # not defaults, for contrast: K-S on tied values, Evidently's goodness-of-fit chi-square
    ("ks", "numerical", poisson_sampler, "poisson(5) counts", 1000, 1000),
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


def perf_and_quality_alarm_rates(windows: int, seed: int) -> dict[str, float]:
    """Share of stable window pairs with any performance regression / accuracy drop."""
    rng = np.random.default_rng(seed)

    def calls(n: int) -> PerfWindow:
        latency = rng.lognormal(np.log(20.0), 0.3, n)
        start = np.sort(rng.integers(0, 3600 * 10**9, n))
        return PerfWindow.from_events(
            pl.DataFrame(
                {
                    "latency_ns": (latency * 1e6).astype(np.int64),
                    "device_time_ns": (latency * 0.6e6).astype(np.int64),
                    "status": np.where(rng.random(n) < 0.02, "error", "ok"),
                    "start_time_ns": start,
                }
            )
        )

    def labelled(n: int):
        truth = rng.integers(0, 2, n)
        return truth, np.where(rng.random(n) < 0.9, truth, 1 - truth)

    perf = sum(
        any(c.regressed for c in compare_performance(calls(3000), calls(3000)))
        for _ in range(windows)
    )
    quality = sum(
        compare_quality("classification", labelled(1000), labelled(1000))[0].regressed
        for _ in range(windows)
    )
    points = 0
    alarms = {"cusum": 0, "page_hinkley": 0}
    for _ in range(max(windows // 10, 10)):
        series = rng.normal(100.0, 5.0, 2000)
        points += 2000 - 120
        alarms["cusum"] += len(cusum(series))
        alarms["page_hinkley"] += len(page_hinkley(series))
    return {
        "performance_regression_rate|3000 calls": perf / windows,
        "accuracy_drop_rate|1000 labels": quality / windows,
        "cusum_points_per_false_alarm": points / max(alarms["cusum"], 1),
        "page_hinkley_points_per_false_alarm": points / max(alarms["page_hinkley"], 1),
        "change_point_points": points,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulations", type=int, default=2000)
    parser.add_argument("--windows", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    figures: dict[str, float] = {"simulations": args.simulations}
    for index, (test, kind, sampler, scenario, n_ref, n_cur) in enumerate(SCENARIOS):
        result = false_alarm_rate(
            test,
            kind,
            sampler,
            scenario=scenario,
            n_reference=n_ref,
            n_current=n_cur,
            simulations=args.simulations,
            seed=args.seed + index,  # independent draws per scenario
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
    for key, value in perf_and_quality_alarm_rates(args.windows, args.seed).items():
        figures[key] = round(value, 4)
        print(f"{key:45s} {value:.4g}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
