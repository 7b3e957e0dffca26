"""The guarded rollout's judge: candidate vs live, checked every interval, three outcomes.

Each metric (error rate, latency exceedance, accuracy on labeled calls) has its own
anytime-valid test (`_sequential.py`); the family α is split equally (Bonferroni on
e-values: metric m rejects when `E_m ≥ k/α`), so the chance that an identical candidate is
ever rolled back, however many checks run, is at most α.

- FAIL (roll back): some metric rejected "candidate no worse".
- PASS (promote): no rejection, and every metric has either excluded the harmful effect
  (its confidence sequence lies below `min_effect`) or reached its sample budget.
- INCONCLUSIVE: otherwise: too little traffic, label coverage below the floor, or
  neither harm excluded nor budget reached; the caller's policy waits, pauses or extends.

Missing data is never a zero: a `None` interval, or an arm with no calls, adds nothing and
is counted as empty; an arm with traffic but no labels adds nothing to accuracy.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from ._sequential import SequentialBernoulliTest, SequentialResult, Worse


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class ArmCounts:
    """One arm's counts over one interval. `slow`: calls above the guard's latency threshold
    (fixed before the interval, e.g. live's p95 before the rollout); `labeled`, `correct`:
    the calls whose label has arrived, and those the model got right."""

    calls: int
    errors: int = 0
    slow: int = 0
    labeled: int = 0
    correct: int = 0

    def __post_init__(self) -> None:
        if min(self.calls, self.errors, self.slow, self.labeled, self.correct) < 0:
            raise ValueError(f"counts must be non-negative: {self}")
        if max(self.errors, self.slow, self.labeled) > self.calls or self.correct > self.labeled:
            raise ValueError(f"errors, slow, labeled ≤ calls and correct ≤ labeled: {self}")


@dataclass(frozen=True)
class IntervalCounts:
    """Both arms over the same interval of live traffic."""

    candidate: ArmCounts
    live: ArmCounts


@dataclass(frozen=True)
class MetricOptions:
    """One metric's test: the minimal harmful effect (absolute rate difference), the tolerated
    difference, the per-arm sample floor before a look counts, and the per-arm budget after
    which "no rejection" promotes."""

    min_effect: float
    tolerance: float = 0.0
    min_samples: int = 200
    budget: int = 10_000

    def __post_init__(self) -> None:
        if self.budget < self.min_samples:
            raise ValueError(f"budget {self.budget} < min_samples {self.min_samples}")


# Defaults for ~500 calls per arm per interval and 30% label coverage: a budget of 20 intervals
# of traffic, and of 40 of labels (150 a look detect a 3-point accuracy drop in ~14 looks, p90
# ~27; a shorter label budget would promote some of those first).
DEFAULT_ERROR_RATE = MetricOptions(min_effect=0.01, min_samples=500, budget=10_000)
DEFAULT_LATENCY = MetricOptions(min_effect=0.02, min_samples=500, budget=10_000)
DEFAULT_ACCURACY = MetricOptions(min_effect=0.03, min_samples=150, budget=6_000)

_SOURCES: dict[str, tuple[Worse, str, str]] = {
    # metric → (which direction is worse, successes field, trials field)
    "error_rate": ("higher", "errors", "calls"),
    "latency_exceedance": ("higher", "slow", "calls"),
    "accuracy": ("lower", "correct", "labeled"),
}


@dataclass(frozen=True)
class MetricEvidence:
    """One metric's statistics at a check: what the decision was made from."""

    name: str
    worse: Worse
    candidate_successes: int
    candidate_trials: int
    live_successes: int
    live_trials: int
    candidate_rate: float | None
    live_rate: float | None
    min_effect: float
    tolerance: float
    alpha: float  # this metric's share of the family α
    budget: int
    budget_reached: bool
    coverage_ok: bool
    status: str  # "rejected", "harm_excluded", "budget_reached", "undecided", "insufficient"
    test: SequentialResult


def _finite(value: Any) -> Any:
    """NaN and infinities as None, so the record is valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class GuardDecision:
    """The outcome of one check with its evidence; `to_dict()` is what gets stored."""

    outcome: Outcome
    reason: str
    check: int  # checks so far, empty intervals included
    looks: int  # intervals that brought data to both arms
    empty_intervals: int
    alpha: float
    label_coverage: dict[str, float | None]
    metrics: tuple[MetricEvidence, ...] = field(default_factory=tuple)

    def metric(self, name: str) -> MetricEvidence:
        return next(m for m in self.metrics if m.name == name)

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["outcome"] = str(self.outcome)
        for metric in record["metrics"]:
            metric["test"] = {k: _finite(v) for k, v in metric["test"].items()}
            for key in ("candidate_rate", "live_rate"):
                metric[key] = _finite(metric[key])
        record["label_coverage"] = {k: _finite(v) for k, v in self.label_coverage.items()}
        return record


class RolloutGuard:
    """Candidate vs live over successive intervals; `check()` after each one.

    `error_rate`, `latency`, `accuracy`: each metric's options, or None to leave it out (the
    family α is split over the metrics kept). `label_coverage_floor`: the share of each arm's
    calls that must be labeled before accuracy counts (labels that arrive first are often
    not a random subset).
    """

    def __init__(
        self,
        *,
        alpha: float = 0.05,
        error_rate: MetricOptions | None = DEFAULT_ERROR_RATE,
        latency: MetricOptions | None = DEFAULT_LATENCY,
        accuracy: MetricOptions | None = DEFAULT_ACCURACY,
        label_coverage_floor: float = 0.2,
    ) -> None:
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), not {alpha}")
        if not 0.0 <= label_coverage_floor <= 1.0:
            raise ValueError(f"label_coverage_floor must be in [0, 1], not {label_coverage_floor}")
        chosen = {"error_rate": error_rate, "latency_exceedance": latency, "accuracy": accuracy}
        self.options = {name: o for name, o in chosen.items() if o is not None}
        if not self.options:
            raise ValueError("a guard needs at least one metric")
        self.alpha = alpha
        self.metric_alpha = alpha / len(self.options)
        self.label_coverage_floor = label_coverage_floor
        self.tests = {
            name: SequentialBernoulliTest(
                worse=_SOURCES[name][0],
                min_effect=o.min_effect,
                tolerance=o.tolerance,
                min_samples=o.min_samples,
            )
            for name, o in self.options.items()
        }
        self.checks = self.looks = self.empty_intervals = 0
        self._calls = {"candidate": 0, "live": 0}
        self._labeled = {"candidate": 0, "live": 0}

    def _coverage(self) -> dict[str, float | None]:
        return {
            arm: (self._labeled[arm] / self._calls[arm] if self._calls[arm] else None)
            for arm in ("candidate", "live")
        }

    def _coverage_ok(self) -> bool:
        shares = self._coverage().values()
        return all(s is not None and s >= self.label_coverage_floor for s in shares)

    def check(self, interval: IntervalCounts | None) -> GuardDecision:
        """Add one interval's counts (None: no data arrived) and decide."""
        self.checks += 1
        if interval is None or not (interval.candidate.calls and interval.live.calls):
            self.empty_intervals += 1
        else:
            self.looks += 1
            for arm in ("candidate", "live"):
                counts = getattr(interval, arm)
                self._calls[arm] += counts.calls
                self._labeled[arm] += counts.labeled
            coverage_ok = self._coverage_ok()
            for name, test in self.tests.items():
                _, successes, trials = _SOURCES[name]
                c, live = interval.candidate, interval.live
                test.update(
                    getattr(c, successes),
                    getattr(c, trials),
                    getattr(live, successes),
                    getattr(live, trials),
                    eligible=coverage_ok or name != "accuracy",
                )
        return self._decide()

    def _evidence(self, name: str) -> MetricEvidence:
        test, options = self.tests[name], self.options[name]
        coverage_ok = self._coverage_ok() or name != "accuracy"
        result = test.result(self.metric_alpha, eligible=coverage_ok)
        budget_reached = min(test.n_cand, test.n_live) >= options.budget
        if result.rejected:
            status = "rejected"
        elif not result.eligible:
            status = "insufficient"
        elif result.harm_excluded:
            status = "harm_excluded"
        elif budget_reached:
            status = "budget_reached"
        else:
            status = "undecided"
        return MetricEvidence(
            name=name,
            worse=test.worse,
            candidate_successes=test.x_cand,
            candidate_trials=test.n_cand,
            live_successes=test.x_live,
            live_trials=test.n_live,
            candidate_rate=test.x_cand / test.n_cand if test.n_cand else None,
            live_rate=test.x_live / test.n_live if test.n_live else None,
            min_effect=options.min_effect,
            tolerance=options.tolerance,
            alpha=self.metric_alpha,
            budget=options.budget,
            budget_reached=budget_reached,
            coverage_ok=coverage_ok,
            status=status,
            test=result,
        )

    def _decide(self) -> GuardDecision:
        metrics = tuple(self._evidence(name) for name in self.tests)
        rejected = [m.name for m in metrics if m.status == "rejected"]
        waiting = [m.name for m in metrics if m.status in ("insufficient", "undecided")]
        if rejected:
            outcome, reason = Outcome.FAIL, f"candidate worse on {', '.join(rejected)}"
        elif not waiting:
            how = sorted({m.status for m in metrics})
            outcome, reason = Outcome.PASS, f"no metric rejected; {' / '.join(how)} on all"
        else:
            short = [m.name for m in metrics if m.status == "insufficient"]
            outcome = Outcome.INCONCLUSIVE
            reason = (
                f"too little data for {', '.join(short)}"
                if short
                else f"no decision yet on {', '.join(waiting)}"
            )
        return GuardDecision(
            outcome=outcome,
            reason=reason,
            check=self.checks,
            looks=self.looks,
            empty_intervals=self.empty_intervals,
            alpha=self.alpha,
            label_coverage=self._coverage(),
            metrics=metrics,
        )
