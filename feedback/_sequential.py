"""Anytime-valid one-sided tests for "the candidate is worse than live" on Bernoulli counts.

Why: Flagger, Argo Rollouts and Kayenta re-run a fixed-α test on a growing window at every
interval; at α = 0.05 that rolls back about 14% of identical candidates after 5 looks and
25% after 20 (Armitage, McPherson & Rowe, "Repeated significance tests on accumulating
data", 1969). A mixture sequential probability ratio test instead yields an e-process
`E_t`: under the null `P(sup_t E_t ≥ 1/α) ≤ α` (Ville's inequality), so it may be checked
after every interval, and stopped at any time, without inflating false rollbacks.

The three guarded metrics all reduce to a difference of two Bernoulli rates:
error rate (errors / calls), accuracy (correct / labeled calls) and latency, as the rate at
which calls exceed a threshold fixed before the interval (live's p95 before the rollout:
a +20% shift of the candidate's p95 raises its exceedance rate from 5% to about 10%).

The statistic. Let `Δ = s·(p_cand − p_live)` with `s = +1` when higher is worse (errors,
slow calls) and `s = −1` when lower is worse (accuracy), so `Δ > 0` means "candidate
worse". From the cumulative counts, `Δ̂` has standard error `√V` (unpooled, with
add-one smoothing so that zero counts do not give zero variance). Treating `Δ̂` as a
Gaussian observation of `Δ` with information `1/V` (the canonical joint distribution of
Jennison & Turnbull, "Group Sequential Methods", 2000, ch. 3), the likelihood ratio of
`Δ = Δ₀ + θ` against `Δ = Δ₀`, mixed over a half-normal prior `θ ~ N⁺(0, τ²)`, is

    E = 2 (1 + r)^(−1/2) · exp(z² r / (2 (1 + r))) · Φ(z √(r / (1 + r))),
    z = (Δ̂ − Δ₀) / √V,   r = τ² / V,

the normal-mixture boundary of Howard, Ramdas, McAuliffe & Sekhon, "Time-uniform,
nonparametric, nonasymptotic confidence sequences" (Ann. Statist., 2021), in its one-sided
form; it is the mSPRT of Johari, Koomen, Pekelis & Walsh, "Always valid inference:
continuous monitoring of A/B tests" (Oper. Res., 2022). Against the composite null
`Δ ≤ Δ₀` it is a supermartingale, since every mixed alternative lies above `Δ₀`. The
prior scale `τ` is the minimal effect of interest, which is where the test has most power.

Validity is asymptotic in the counts (plug-in variance; Waudby-Smith, Arnold, Wu, Howard &
Ramdas, "Time-uniform central limit theory and asymptotic confidence sequences", Ann.
Statist., 2024), so no look is judged before `min_samples` calls (or labels) per arm; the
simulation in `_guard_calibration.py` measures the resulting false-rollback rate.

The same e-value with the roles reversed, null `Δ ≥ δ` (the minimal harmful effect),
excludes harm: that is the confidence-sequence side of the guard's "pass".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import optimize, special

Worse = Literal["higher", "lower"]

_LOG_E_CAP = 700.0  # exp(700) is finite in float64; beyond that the evidence is plain


def normal_mixture_log_e(z: np.ndarray | float, r: np.ndarray | float) -> np.ndarray:
    """Log e-value of the one-sided half-normal mixture SPRT at z-score `z`, ratio `r = τ²/V`.

    Vectorised; computed in logs (`log_ndtr`) so that strong evidence does not overflow.
    """
    z = np.asarray(z, dtype=float)
    r = np.asarray(r, dtype=float)
    shrink = r / (1.0 + r)
    return (
        math.log(2.0)
        - 0.5 * np.log1p(r)
        + 0.5 * z * z * shrink
        + special.log_ndtr(z * np.sqrt(shrink))
    )


def rate_difference(
    x_cand: np.ndarray | float,
    n_cand: np.ndarray | float,
    x_live: np.ndarray | float,
    n_live: np.ndarray | float,
    worse: Worse,
) -> tuple[np.ndarray, np.ndarray]:
    """`(Δ̂, V)`: the oriented difference of rates (positive = candidate worse) and its variance.

    Vectorised. Arms without data give NaN, never a rate of zero: no traffic is no evidence.
    """
    x_c, n_c, x_l, n_l = (np.asarray(a, dtype=float) for a in (x_cand, n_cand, x_live, n_live))
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = x_c / n_c - x_l / n_l
        p_c = (x_c + 1.0) / (n_c + 2.0)
        p_l = (x_l + 1.0) / (n_l + 2.0)
        variance = p_c * (1.0 - p_c) / n_c + p_l * (1.0 - p_l) / n_l
    sign = 1.0 if worse == "higher" else -1.0
    empty = (n_c <= 0) | (n_l <= 0)
    return np.where(empty, np.nan, sign * diff), np.where(empty, np.nan, variance)


def boundary_z(r: float, log_threshold: float) -> float:
    """The z-score at which the mixture e-value reaches `exp(log_threshold)` (for bounds)."""

    def gap(z: float) -> float:
        return float(normal_mixture_log_e(z, r)) - log_threshold

    high = 1.0
    while gap(high) < 0:
        high *= 2.0
    return float(optimize.brentq(gap, -1.0 if gap(-1.0) < 0 else -high, high, xtol=1e-9))


@dataclass(frozen=True)
class SequentialResult:
    """Where one sequential test stands after its latest update, at level `alpha`."""

    difference: float  # Δ̂, positive = candidate worse; NaN without data
    std_error: float
    z: float  # (Δ̂ − tolerance) / √V
    e_value: float  # against "candidate no worse than tolerance", now
    max_e_value: float  # running maximum over eligible looks (what rejection uses)
    p_value: float  # anytime-valid: min(1, 1 / max_e_value)
    harm_e_value: float  # against "candidate worse by ≥ min_effect", now
    lower_bound: float  # of Δ, one-sided at alpha (confidence sequence)
    upper_bound: float
    threshold: float  # 1 / alpha
    eligible: bool  # enough data (and label coverage) for this look to count
    rejected: bool  # max_e_value ≥ 1 / alpha: candidate worse
    harm_excluded: bool  # harm_e_value ≥ 1 / alpha: candidate not worse by min_effect


class SequentialBernoulliTest:
    """A one-sided mixture SPRT of candidate vs live on Bernoulli counts; O(1) state.

    `worse`: whether a higher ("higher": errors, slow calls) or a lower ("lower": accuracy)
    candidate rate is harmful. `min_effect` (δ > 0): the smallest harmful difference worth
    catching; it scales the mixture and defines the harm a pass must exclude. `tolerance`
    (Δ₀ ≥ 0, < δ): a difference that is not a regression. `min_samples`: per arm, before a
    look may count.
    """

    def __init__(
        self,
        *,
        worse: Worse,
        min_effect: float,
        tolerance: float = 0.0,
        min_samples: int = 200,
    ) -> None:
        if worse not in ("higher", "lower"):
            raise ValueError(f"worse must be 'higher' or 'lower', not {worse!r}")
        if not 0.0 < min_effect < 1.0:
            raise ValueError(f"min_effect must be in (0, 1), not {min_effect}")
        if not 0.0 <= tolerance < min_effect:
            raise ValueError(f"tolerance must be in [0, min_effect), not {tolerance}")
        if min_samples < 1:
            raise ValueError(f"min_samples must be ≥ 1, not {min_samples}")
        self.worse: Worse = worse
        self.min_effect = float(min_effect)
        self.tolerance = float(tolerance)
        self.min_samples = int(min_samples)
        self.x_cand = self.n_cand = self.x_live = self.n_live = 0
        self.max_log_e = -math.inf
        self.eligible_looks = 0

    def update(
        self, x_cand: int, n_cand: int, x_live: int, n_live: int, *, eligible: bool = True
    ) -> None:
        """Add one interval's counts. The running maximum moves only on an eligible look:
        `eligible` (the caller's gate, e.g. label coverage) and `min_samples` per arm."""
        for x, n in ((x_cand, n_cand), (x_live, n_live)):
            if not 0 <= x <= n:
                raise ValueError(f"counts must satisfy 0 ≤ successes ≤ trials, got {x}/{n}")
        self.x_cand += int(x_cand)
        self.n_cand += int(n_cand)
        self.x_live += int(x_live)
        self.n_live += int(n_live)
        if eligible and self.has_min_samples:
            self.eligible_looks += 1
            self.max_log_e = max(self.max_log_e, self._log_e()[0])

    @property
    def has_min_samples(self) -> bool:
        return min(self.n_cand, self.n_live) >= self.min_samples

    def _log_e(self) -> tuple[float, float, float, float, float]:
        diff, var = rate_difference(self.x_cand, self.n_cand, self.x_live, self.n_live, self.worse)
        diff, var = float(diff), float(var)
        if math.isnan(diff):
            return -math.inf, -math.inf, diff, math.nan, math.nan
        se = math.sqrt(var)
        r = self.min_effect**2 / var
        z = (diff - self.tolerance) / se
        log_e = float(normal_mixture_log_e(z, r))
        log_harm = float(normal_mixture_log_e((self.min_effect - diff) / se, r))
        return log_e, log_harm, diff, se, z

    def result(self, alpha: float, *, eligible: bool = True) -> SequentialResult:
        """The test's standing at level `alpha` (the metric's share of the family α)."""
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), not {alpha}")
        log_threshold = math.log(1.0 / alpha)
        log_e, log_harm, diff, se, z = self._log_e()
        eligible = eligible and self.has_min_samples
        if math.isnan(diff):
            lower = upper = math.nan
        else:
            half_width = boundary_z(self.min_effect**2 / se**2, log_threshold) * se
            lower, upper = diff - half_width, diff + half_width
        return SequentialResult(
            difference=diff,
            std_error=se,
            z=z,
            e_value=math.exp(min(log_e, _LOG_E_CAP)),
            max_e_value=math.exp(min(self.max_log_e, _LOG_E_CAP)),
            p_value=min(1.0, math.exp(-self.max_log_e)) if self.max_log_e > 0 else 1.0,
            harm_e_value=math.exp(min(log_harm, _LOG_E_CAP)),
            lower_bound=lower,
            upper_bound=upper,
            threshold=1.0 / alpha,
            eligible=eligible,
            rejected=self.max_log_e >= log_threshold,
            harm_excluded=eligible and log_harm >= log_threshold,
        )
