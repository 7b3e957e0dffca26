"""Calibration and power of the rollout guard by simulation, vectorised over rollouts.

Each simulated rollout serves `calls` calls per arm per interval; each call errors with
probability `error_rate`, is slow (above live's pre-rollout p95, so 5% for live) with
probability `slow_rate`, and is labeled with probability `label_coverage`, then correct with
probability `accuracy`. Counting exceedances of a fixed threshold is exactly a binomial draw,
so latencies themselves need not be drawn: for lognormal latencies of log-sd `sigma`,
multiplying the candidate's latencies by `1 + shift` (its p95 moves by the same factor)
gives an exceedance rate of `1 − Φ(z₀.₉₅ − log(1 + shift) / sigma)`.

`guard_paths` applies the same functions as `RolloutGuard` (a test checks they agree
rollout by rollout), but to arrays of shape (rollouts, looks) at once. A rollout that
passes is still checked to the horizon, so the false-rollback rate is an upper bound on the
guard's, which stops at a pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ._guard import _SOURCES, DEFAULT_ACCURACY, DEFAULT_ERROR_RATE, DEFAULT_LATENCY, MetricOptions
from ._sequential import normal_mixture_log_e, rate_difference

P95_Z = float(stats.norm.ppf(0.95))


@dataclass(frozen=True)
class Arm:
    """One arm's per-call probabilities."""

    error_rate: float = 0.02
    slow_rate: float = 0.05
    accuracy: float = 0.90


def slow_rate_after_shift(shift: float, sigma: float = 0.5) -> float:
    """Share of calls above live's p95 once lognormal latencies are scaled by `1 + shift`."""
    return float(stats.norm.sf(P95_Z - math.log1p(shift) / sigma))


def simulate_counts(
    rng: np.random.Generator,
    rollouts: int,
    looks: int,
    *,
    candidate: Arm,
    live: Arm,
    calls: int = 500,
    label_coverage: float = 0.3,
) -> dict[str, np.ndarray]:
    """Per-interval counts, each of shape (rollouts, looks), keyed `<arm>_<field>`."""
    shape = (rollouts, looks)
    out: dict[str, np.ndarray] = {}
    for prefix, arm in (("candidate", candidate), ("live", live)):
        labeled = rng.binomial(calls, label_coverage, shape)
        out |= {
            f"{prefix}_calls": np.full(shape, calls),
            f"{prefix}_errors": rng.binomial(calls, arm.error_rate, shape),
            f"{prefix}_slow": rng.binomial(calls, arm.slow_rate, shape),
            f"{prefix}_labeled": labeled,
            f"{prefix}_correct": rng.binomial(labeled, arm.accuracy),
        }
    return out


def default_options() -> dict[str, MetricOptions]:
    return {
        "error_rate": DEFAULT_ERROR_RATE,
        "latency_exceedance": DEFAULT_LATENCY,
        "accuracy": DEFAULT_ACCURACY,
    }


@dataclass(frozen=True)
class GuardPaths:
    """Per (rollout, look): whether the guard has failed by then / passes now, and which
    metric rejected first (−1: none), plus the first look (1-based) of each, 0 if never."""

    failed: np.ndarray
    passed: np.ndarray
    rejected_by: dict[str, np.ndarray]
    first_fail: np.ndarray
    first_pass: np.ndarray


def _first_true(flags: np.ndarray) -> np.ndarray:
    return np.where(flags.any(axis=1), flags.argmax(axis=1) + 1, 0)


def guard_paths(
    counts: dict[str, np.ndarray],
    *,
    alpha: float = 0.05,
    options: dict[str, MetricOptions] | None = None,
    label_coverage_floor: float = 0.2,
) -> GuardPaths:
    """The guard's outcome at every look of every rollout (cumulative counts, as the guard)."""
    options = default_options() if options is None else options
    cum = {k: np.cumsum(v, axis=1) for k, v in counts.items()}
    log_threshold = math.log(len(options) / alpha)
    coverage_ok = (
        np.minimum(
            cum["candidate_labeled"] / cum["candidate_calls"],
            cum["live_labeled"] / cum["live_calls"],
        )
        >= label_coverage_floor
    )
    failed = np.zeros_like(coverage_ok)
    cleared = np.ones_like(coverage_ok)
    rejected_by = {}
    for name, opt in options.items():
        worse, successes, trials = _SOURCES[name]
        x_c, n_c = cum[f"candidate_{successes}"], cum[f"candidate_{trials}"]
        x_l, n_l = cum[f"live_{successes}"], cum[f"live_{trials}"]
        diff, var = rate_difference(x_c, n_c, x_l, n_l, worse)
        se = np.sqrt(var)
        r = opt.min_effect**2 / var
        eligible = np.minimum(n_c, n_l) >= opt.min_samples
        if name == "accuracy":
            eligible &= coverage_ok
        log_e = np.where(eligible, normal_mixture_log_e((diff - opt.tolerance) / se, r), -np.inf)
        rejected = np.maximum.accumulate(log_e, axis=1) >= log_threshold
        harm = eligible & (normal_mixture_log_e((opt.min_effect - diff) / se, r) >= log_threshold)
        budget = np.minimum(n_c, n_l) >= opt.budget
        rejected_by[name] = rejected
        failed |= rejected
        cleared &= eligible & (harm | budget)
    passed = cleared & ~failed
    return GuardPaths(failed, passed, rejected_by, _first_true(failed), _first_true(passed))


def naive_rejections(
    counts: dict[str, np.ndarray], *, alpha: float = 0.05, metric: str = "error_rate"
) -> np.ndarray:
    """A fixed-α two-sided pooled z-test of one metric re-run on the growing window each
    look (what Flagger-style checks do): has it rejected by each look? (rollouts, looks)."""
    _, successes, trials = _SOURCES[metric]
    cum = {k: np.cumsum(v, axis=1) for k, v in counts.items()}
    x_c, n_c = cum[f"candidate_{successes}"], cum[f"candidate_{trials}"]
    x_l, n_l = cum[f"live_{successes}"], cum[f"live_{trials}"]
    pooled = (x_c + x_l) / (n_c + n_l)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (x_c / n_c - x_l / n_l) / np.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_l))
    reject = np.nan_to_num(np.abs(z), nan=0.0) >= stats.norm.isf(alpha / 2)
    return np.logical_or.accumulate(reject, axis=1)


def binomial_interval(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Clopper–Pearson interval of a rate: exact, so it never under-covers."""
    tail = (1 - level) / 2
    low = stats.beta.ppf(tail, successes, trials - successes + 1) if successes else 0.0
    high = (
        stats.beta.ppf(1 - tail, successes + 1, trials - successes) if successes < trials else 1.0
    )
    return float(low), float(high)


def rate_with_interval(flags: np.ndarray) -> dict[str, float | list[float]]:
    k, n = int(flags.sum()), int(flags.size)
    low, high = binomial_interval(k, n)
    return {"rate": k / n, "ci95": [round(low, 5), round(high, 5)], "n": n}


def calibration(
    rollouts: int, looks: int, *, seed: int, calls: int = 500, label_coverage: float = 0.3
) -> dict[str, object]:
    """A/A rollouts: the guard's false-rollback rate over `looks` checks vs the naive re-test's."""
    rng = np.random.default_rng(seed)
    counts = simulate_counts(
        rng,
        rollouts,
        looks,
        candidate=Arm(),
        live=Arm(),
        calls=calls,
        label_coverage=label_coverage,
    )
    paths = guard_paths(counts)
    naive = naive_rejections(counts)
    first_pass = paths.first_pass[paths.first_pass > 0]
    return {
        "false_rollback": rate_with_interval(paths.failed[:, -1]),
        "naive_after_5_looks": rate_with_interval(naive[:, min(5, looks) - 1]),
        "naive_after_all_looks": rate_with_interval(naive[:, -1]),
        "promoted_by_last_look": float((paths.first_pass > 0).mean()),
        "promotion_look_median": float(np.median(first_pass)) if first_pass.size else None,
    }


def power(
    candidate: Arm,
    rollouts: int,
    looks: int,
    *,
    seed: int,
    calls: int = 500,
    label_coverage: float = 0.3,
) -> dict[str, object]:
    """A regressed candidate: the share whose first decision is a rollback, within `looks`,
    and at which look (median, p90; infinite when it was promoted or never decided)."""
    rng = np.random.default_rng(seed)
    counts = simulate_counts(
        rng,
        rollouts,
        looks,
        candidate=candidate,
        live=Arm(),
        calls=calls,
        label_coverage=label_coverage,
    )
    paths = guard_paths(counts)
    never = looks + 1
    fail = np.where(paths.first_fail > 0, paths.first_fail, never)
    passed = np.where(paths.first_pass > 0, paths.first_pass, never)
    first = np.where((fail < passed) & (fail < never), fail, np.inf).astype(float)
    return {
        "caught": float(np.isfinite(first).mean()),
        "promoted_first": float(((passed < fail) & (passed < never)).mean()),
        "looks_median": float(np.median(first)),
        "looks_p90": float(np.quantile(first, 0.9)),
        "caught_by": {k: float(v[:, -1].mean()) for k, v in paths.rejected_by.items()},
    }
