"""Checks on the calls themselves: latency, device time, error rate and throughput against
the previous period; change points in the per-minute latency and error series."""

from __future__ import annotations

from typing import Any

import numpy as np

from inferloop.grains import MINUTE_S, ceil_to_minute_s
from inferloop.store.rollups import minute_series
from inferloop.store.vocabulary import CheckScope

from ._changepoint import detect_change_points
from ._checks import NS, CheckContext, CheckResult
from ._observations import change_point_observations, performance_observations
from ._payloads import calls_frame
from ._performance import PerfWindow, compare_performance


class PerformanceCheck:
    """Window vs previous period; an empty current window still counts (throughput fell
    to zero), an empty previous period evaluates nothing."""

    scope = CheckScope.PERFORMANCE

    def run(self, context: CheckContext) -> CheckResult:
        if not context.previous:
            return CheckResult()
        window_ns = context.window_ns
        window_s = window_ns / NS
        start_ns = context.window.start_ns
        checks = compare_performance(
            PerfWindow.from_events(
                calls_frame(context.previous), duration_s=window_s, start_ns=start_ns - window_ns
            ),
            PerfWindow.from_events(
                calls_frame(context.events), duration_s=window_s, start_ns=start_ns
            ),
            context.config.performance,
        )
        if not checks:
            return CheckResult()
        found = performance_observations(context.against_previous_period(), checks)
        return CheckResult(found, evaluated=True)


def error_rate_residuals(points: list[Any], warmup: int) -> np.ndarray | None:
    """Per-minute errors as binomial z-scores against the warm-up's error rate; None when
    the warm-up expects under one error a minute (the normal approximation would turn
    every stray error into an alarm)."""
    counts = np.array([p.count for p in points], dtype=float)
    errors = np.array([p.errors for p in points], dtype=float)
    rate = errors[:warmup].sum() / counts[:warmup].sum()
    if rate <= 0 or rate >= 1 or np.mean(counts[:warmup]) * rate < 1:
        return None
    expected = counts * rate
    return (errors - expected) / np.sqrt(expected * (1 - rate))


class ChangePointCheck:
    """CUSUM or Page-Hinkley over the last `change_point_minutes` of minute rollups (so it
    still works after raw-event retention); reports alarms inside the current window."""

    scope = CheckScope.CHANGE_POINTS

    def run(self, context: CheckContext) -> CheckResult:
        window, config = context.window, context.config
        end_s = ceil_to_minute_s(window.end_ns / NS)
        start_s = end_s - config.change_point_minutes * MINUTE_S
        points = [
            p
            for p in minute_series(
                context.connection,
                window.model,
                start_s=start_s,
                end_s=end_s,
                version=window.version,
            )
            if p.count
        ]
        warmup = config.change_point_warmup
        if len(points) <= warmup:
            return CheckResult()
        minutes = [p.minute_start_s for p in points]
        method = config.change_point_method
        latency = np.log([max(p.p95_ns or 1.0, 1.0) for p in points])
        found = change_point_observations(
            window, "latency_p95_ms", detect_change_points(latency, method, warmup=warmup), minutes
        )
        errors = error_rate_residuals(points, warmup)
        if errors is not None:
            detected = detect_change_points(errors, method, warmup=warmup, standardised=True)
            found += change_point_observations(window, "error_rate", detected, minutes)
        return CheckResult(found, evaluated=True)
