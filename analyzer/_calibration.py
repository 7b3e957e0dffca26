"""Measuring a drift test's false-alarm rate on data without drift, by simulation.

Both samples are drawn from the same distribution, so every 'drifted' verdict is a
false alarm; a calibrated test alarms at its nominal rate (its threshold).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._samples import ColumnKind, ColumnSample
from ._stattests import get_stattest

Sampler = Callable[[np.random.Generator, int], np.ndarray]


@dataclass(frozen=True)
class FalseAlarmRate:
    test: str
    scenario: str
    n_reference: int
    n_current: int
    simulations: int
    nominal: float
    rate: float

    @property
    def standard_error(self) -> float:
        return float(np.sqrt(self.nominal * (1 - self.nominal) / self.simulations))


def categorical_sampler(n_categories: int) -> Sampler:
    """Uniform labels; 'binary' is the two-category case."""
    labels = np.array([f"k{i:02d}" for i in range(n_categories)])
    return lambda rng, n: labels[rng.integers(0, n_categories, n)]


def normal_sampler(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.normal(0.0, 1.0, n)


def poisson_sampler(rng: np.random.Generator, n: int) -> np.ndarray:
    """Counts: numerical, but with few distinct values and heavy ties."""
    return rng.poisson(5.0, n).astype(float)


def rounded_sampler(rng: np.random.Generator, n: int) -> np.ndarray:
    """A measurement rounded to one decimal: ~80 distinct values."""
    return rng.normal(0.0, 1.0, n).round(1)


def false_alarm_rate(
    test_name: str,
    kind: ColumnKind | str,
    sampler: Sampler,
    *,
    scenario: str,
    n_reference: int,
    n_current: int,
    simulations: int,
    seed: int = 0,
    threshold: float | None = None,
) -> FalseAlarmRate:
    """Share of no-drift simulations in which `test_name` reports drift."""
    test = get_stattest(test_name)
    kind = ColumnKind(kind)
    limit = test.default_threshold if threshold is None else threshold
    rng = np.random.default_rng(seed)
    alarms = 0
    for _ in range(simulations):
        reference = ColumnSample(sampler(rng, n_reference), kind)
        current = ColumnSample(sampler(rng, n_current), kind)
        alarms += bool(test.func(reference, current, kind, limit).drifted)
    return FalseAlarmRate(
        test_name, scenario, n_reference, n_current, simulations, limit, alarms / simulations
    )
