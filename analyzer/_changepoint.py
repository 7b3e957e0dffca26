"""Change points in per-minute series (latency quantiles, error rate, throughput).

Both detectors work in standardised units: unless the caller standardised the series
itself, location and scale come from a warm-up stretch (median and MAD, so one slow minute there does not hide a later shift). After a
detection the detector restarts with a fresh warm-up on the new level, so a lasting
shift is reported once, not on every minute that follows it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np


@dataclass(frozen=True)
class ChangePoint:
    index: int
    """Position in the series where the alarm fired."""
    start_index: int
    """Where the change most likely began."""
    direction: Literal["up", "down"]
    statistic: float


# Scan standardised values from the start; return (alarm index, start index, direction,
# statistic) of the first alarm, or None.
_Scan = Callable[[np.ndarray], tuple[int, int, str, float] | None]


def robust_standardise(series: np.ndarray, warmup: int) -> np.ndarray:
    head = series[:warmup]
    center = float(np.median(head))
    scale = 1.4826 * float(np.median(np.abs(head - center)))
    if scale <= 0:
        scale = float(np.std(head)) or 1.0
    return (series - center) / scale


def _run(series: np.ndarray, warmup: int, scan: _Scan, standardised: bool) -> list[ChangePoint]:
    series = np.asarray(series, dtype=float)
    found: list[ChangePoint] = []
    offset = 0
    while series.size - offset > warmup:
        z = series[offset:] if standardised else robust_standardise(series[offset:], warmup)
        hit = scan(z)
        if hit is None:
            break
        index, start, direction, statistic = hit
        found.append(ChangePoint(offset + index, offset + start, direction, statistic))  # type: ignore[arg-type]
        offset += index + 1
    return found


def cusum(
    series: np.ndarray,
    *,
    k: float = 0.5,
    h: float = 10.0,
    warmup: int = 120,
    standardised: bool = False,
) -> list[ChangePoint]:
    """Two-sided tabular CUSUM against the warm-up level.

    k = 0.5 targets shifts of one standard deviation; h = 10 keeps false alarms near one
    per 9,000 points of stable normal data (about six days of minutes), warm-up
    estimation error included, and finds a 1-sigma shift in about 17 points.
    """

    def scan(z: np.ndarray):
        high = low = 0.0
        high_start = low_start = 0
        for i, value in enumerate(z):
            if high == 0:
                high_start = i
            if low == 0:
                low_start = i
            high = max(0.0, high + value - k)
            low = max(0.0, low - value - k)
            if high > h:
                return i, high_start, "up", high
            if low > h:
                return i, low_start, "down", low
        return None

    return _run(series, warmup, scan, standardised)


def page_hinkley(
    series: np.ndarray,
    *,
    delta: float = 0.5,
    threshold: float = 10.0,
    warmup: int = 120,
    standardised: bool = False,
) -> list[ChangePoint]:
    """Page-Hinkley: cumulative deviation from the running mean, in both directions.

    The running mean follows the series itself, so only the scale comes from the
    warm-up; a shift shows as the cumulative sum leaving its extreme by `threshold`.
    """

    def scan(z: np.ndarray):
        total = 0.0
        up_sum = down_sum = up_min = down_max = 0.0
        up_at = down_at = 0
        for i, value in enumerate(z):
            total += value
            mean = total / (i + 1)
            up_sum += value - mean - delta
            down_sum += value - mean + delta
            if up_sum < up_min:
                up_min, up_at = up_sum, i
            if down_sum > down_max:
                down_max, down_at = down_sum, i
            if i < 2:
                continue
            if up_sum - up_min > threshold:
                return i, up_at + 1, "up", up_sum - up_min
            if down_max - down_sum > threshold:
                return i, down_at + 1, "down", down_max - down_sum
        return None

    return _run(series, warmup, scan, standardised)


def detect_change_points(
    series: np.ndarray,
    method: Literal["cusum", "page_hinkley"] = "cusum",
    *,
    warmup: int = 120,
    standardised: bool = False,
) -> list[ChangePoint]:
    """`standardised`: the series is already in z units (e.g. binomial residuals)."""
    if method == "cusum":
        return cusum(series, warmup=warmup, standardised=standardised)
    if method == "page_hinkley":
        return page_hinkley(series, warmup=warmup, standardised=standardised)
    raise ValueError("method must be 'cusum' or 'page_hinkley'")
