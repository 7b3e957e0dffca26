"""Performance regressions of a window against a baseline: latency quantiles (and device
time), error rate and throughput; and the candidate-vs-live comparison built on them.

Every check pairs a one-sided test (so noise does not alert: p < alpha) with a minimum
effect size (so a significant but negligible change does not alert either).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from inferloop.grains import MINUTE_NS, MINUTE_S

from ._profile import to_polars

NS_PER_MS = 1_000_000


@dataclass(frozen=True, kw_only=True)
class PerfOptions:
    """Thresholds of the regression checks."""

    alpha: float = 0.01
    quantiles: tuple[float, ...] = (0.5, 0.95, 0.99)
    min_latency_increase: float = 0.2
    """Relative quantile increase that matters (0.2: 20% slower)."""
    min_latency_increase_ms: float = 1.0
    """...and in absolute terms, so that 1 ms -> 1.3 ms is not paged on."""
    min_error_rate_increase: float = 0.01
    min_throughput_change: float = 0.3
    min_samples: int = 50
    min_minutes: int = 5

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError("alpha must be in (0, 1)")
        if any(not 0 < q < 1 for q in self.quantiles):
            raise ValueError("quantiles must be in (0, 1)")
        if (
            min(self.min_latency_increase, self.min_error_rate_increase, self.min_throughput_change)
            < 0
        ):
            raise ValueError("minimum effects must be ≥ 0")


@dataclass(frozen=True)
class PerfWindow:
    """Per-call measurements of one model version over a period."""

    latency_ms: np.ndarray
    errors: np.ndarray
    duration_s: float
    device_ms: np.ndarray | None = None
    minute_counts: np.ndarray | None = None

    @classmethod
    def from_events(
        cls, frame: Any, *, duration_s: float | None = None, start_ns: int | None = None
    ) -> PerfWindow:
        """From a frame with `latency_ns`, `status`, `start_time_ns` (`device_time_ns` optional).

        With `start_ns` and `duration_s`, per-minute counts cover the whole period, quiet
        minutes included (a model that stops serving shows as zeros, not as no data).
        """
        frame = to_polars(frame)
        latency = frame["latency_ns"].cast(float).to_numpy() / NS_PER_MS
        errors = (frame["status"] == "error").to_numpy()
        device = None
        if "device_time_ns" in frame.columns and frame["device_time_ns"].null_count() < len(frame):
            device = frame["device_time_ns"].drop_nulls().cast(float).to_numpy() / NS_PER_MS
        starts = frame["start_time_ns"].to_numpy() if len(frame) else np.zeros(0, dtype=np.int64)
        minutes = None
        if start_ns is not None and duration_s:
            slots = max(int(duration_s // MINUTE_S), 1)
            index = np.clip((starts - start_ns) // MINUTE_NS, 0, slots - 1).astype(np.int64)
            minutes = np.bincount(index, minlength=slots).astype(float)
        elif len(starts):
            minute = starts // MINUTE_NS
            minutes = np.bincount(minute - minute.min()).astype(float)
            if duration_s is None:
                duration_s = max(float(starts.max() - starts.min()) / 1e9, 1.0)
        return cls(latency, errors, float(duration_s or 0.0), device, minutes)

    @property
    def n(self) -> int:
        return int(self.latency_ms.size)

    @property
    def error_rate(self) -> float:
        return float(self.errors.mean()) if self.errors.size else 0.0


@dataclass(frozen=True)
class PerfCheck:
    """One metric compared with the baseline."""

    metric: str
    baseline: float
    current: float
    change: float
    p_value: float
    regressed: bool
    detail: dict[str, float] = field(default_factory=dict)


def quantile_shift_p_value(baseline: np.ndarray, current: np.ndarray, q: float) -> float:
    """One-sided p-value that `current` has more mass above the pooled q-quantile.

    A generalised median test: counts above the pooled quantile, compared with the
    hypergeometric distribution they follow when both samples share a distribution.
    Exact and distribution-free, so a long-tailed latency cannot fool it.
    """
    pooled = np.quantile(np.concatenate((baseline, current)), q)
    above_base = int(np.count_nonzero(baseline > pooled))
    above_cur = int(np.count_nonzero(current > pooled))
    return hypergeom_upper(above_cur, above_base + above_cur, baseline.size, current.size)


def hypergeom_upper(successes_current: int, successes_total: int, n_base: int, n_cur: int) -> float:
    """P(X ≥ successes_current) when the successes are spread at random over both samples."""
    if successes_total == 0:
        return 1.0
    return float(stats.hypergeom.sf(successes_current - 1, n_base + n_cur, successes_total, n_cur))


def compare_latency(
    baseline: np.ndarray, current: np.ndarray, options: PerfOptions, *, prefix: str = "latency"
) -> list[PerfCheck]:
    checks = []
    if min(baseline.size, current.size) < options.min_samples:
        return checks
    for q in options.quantiles:
        base_q, cur_q = float(np.quantile(baseline, q)), float(np.quantile(current, q))
        change = cur_q / base_q - 1 if base_q > 0 else float("inf")
        p_value = quantile_shift_p_value(baseline, current, q)
        material = change >= options.min_latency_increase and (
            cur_q - base_q >= options.min_latency_increase_ms
        )
        name = f"{prefix}_p{round(q * 100):d}_ms"
        checks.append(
            PerfCheck(name, base_q, cur_q, change, p_value, p_value < options.alpha and material)
        )
    return checks


def compare_error_rate(
    baseline: PerfWindow, current: PerfWindow, options: PerfOptions
) -> PerfCheck | None:
    if min(baseline.n, current.n) < options.min_samples:
        return None
    base_errors, cur_errors = int(baseline.errors.sum()), int(current.errors.sum())
    p_value = hypergeom_upper(cur_errors, base_errors + cur_errors, baseline.n, current.n)
    change = current.error_rate - baseline.error_rate
    regressed = p_value < options.alpha and change >= options.min_error_rate_increase
    return PerfCheck(
        "error_rate", baseline.error_rate, current.error_rate, change, p_value, regressed
    )


def compare_throughput(
    baseline: PerfWindow, current: PerfWindow, options: PerfOptions
) -> PerfCheck | None:
    """Per-minute call counts, two-sided Mann-Whitney (traffic is overdispersed, so a
    Poisson test would alarm on ordinary variation); both drops and surges count."""
    base, cur = baseline.minute_counts, current.minute_counts
    if base is None or cur is None or min(base.size, cur.size) < options.min_minutes:
        return None
    base_rate, cur_rate = float(base.mean()) / 60, float(cur.mean()) / 60
    change = cur_rate / base_rate - 1 if base_rate > 0 else float("inf")
    p_value = float(stats.mannwhitneyu(base, cur, alternative="two-sided").pvalue)
    regressed = p_value < options.alpha and abs(change) >= options.min_throughput_change
    return PerfCheck("throughput_per_s", base_rate, cur_rate, change, p_value, regressed)


def compare_performance(
    baseline: PerfWindow, current: PerfWindow, options: PerfOptions | None = None
) -> list[PerfCheck]:
    """All checks of `current` against `baseline` (those with too little data are left out)."""
    options = options or PerfOptions()
    checks = compare_latency(baseline.latency_ms, current.latency_ms, options)
    if baseline.device_ms is not None and current.device_ms is not None:
        checks += compare_latency(baseline.device_ms, current.device_ms, options, prefix="device")
    checks += [
        c
        for c in (
            compare_error_rate(baseline, current, options),
            compare_throughput(baseline, current, options),
        )
        if c is not None
    ]
    return checks


@dataclass(frozen=True)
class VersionComparison:
    """Candidate against live: `worse` means at least one material, significant regression."""

    verdict: str  # "worse" | "not_worse" | "insufficient_data"
    checks: tuple[PerfCheck, ...]

    @property
    def regressions(self) -> list[PerfCheck]:
        return [c for c in self.checks if c.regressed]


def compare_versions(
    live: PerfWindow,
    candidate: PerfWindow,
    options: PerfOptions | None = None,
    *,
    extra_checks: Sequence[PerfCheck] = (),
) -> VersionComparison:
    """What a guarded rollout asks: is the candidate worse than live on the same period?

    Throughput is left out (a canary gets a share of traffic by design); label-based
    quality checks (see `compare_quality`) can be passed in `extra_checks`.
    """
    options = options or PerfOptions()
    if min(live.n, candidate.n) < options.min_samples:
        return VersionComparison("insufficient_data", tuple(extra_checks))
    checks = compare_latency(live.latency_ms, candidate.latency_ms, options)
    if live.device_ms is not None and candidate.device_ms is not None:
        checks += compare_latency(live.device_ms, candidate.device_ms, options, prefix="device")
    error_check = compare_error_rate(live, candidate, options)
    checks += [error_check] if error_check else []
    checks += list(extra_checks)
    verdict = "worse" if any(c.regressed for c in checks) else "not_worse"
    return VersionComparison(verdict, tuple(checks))
