"""Reads of the minute rollups: latency percentiles over a range, per-minute series.

Rollups survive raw-event retention, so these answer for any range, at minute grain."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from inferloop.grains import MINUTE_S

from .sketch import merge_into, quantiles
from .tables import MinuteRollup


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Aggregates over a time range, read from minute rollups (not raw events)."""

    count: int
    errors: int
    mean_ns: float | None
    max_ns: int | None
    quantiles_ns: dict[float, float | None]


def _rollup_filter(model: str, version: str | None, start_s: int, end_s: int):
    table = MinuteRollup.__table__
    conditions = [
        table.c.model == model,
        table.c.minute_start_s >= start_s,
        table.c.minute_start_s < end_s,
    ]
    if version is not None:
        conditions.append(table.c.version == version)
    return conditions


def latency_summary(
    connection: sa.Connection,
    model: str,
    *,
    start_s: int,
    end_s: int,
    version: str | None = None,
    qs: tuple[float, ...] = (0.5, 0.95, 0.99),
) -> LatencySummary:
    """Count, errors and latency quantiles for minutes in ``[start_s, end_s)``.

    Quantiles come from merging the minutes' histograms: within
    ``inferloop.store.sketch.RELATIVE_ACCURACY`` of the exact values. Minutes
    are whole: a range boundary inside a minute includes or excludes it entirely.
    """
    table = MinuteRollup.__table__
    rows = connection.execute(
        sa.select(
            table.c.count,
            table.c.errors,
            table.c.latency_sum_ns,
            table.c.latency_max_ns,
            table.c.histogram,
        ).where(*_rollup_filter(model, version, start_s, end_s))
    ).all()
    histogram: dict[str, int] = {}
    count = errors = latency_sum = 0
    latency_max: int | None = None
    for row in rows:
        count += row.count
        errors += row.errors
        latency_sum += row.latency_sum_ns
        if row.count:
            latency_max = max(latency_max or 0, row.latency_max_ns)
        merge_into(histogram, row.histogram)
    values = quantiles(histogram, qs)
    return LatencySummary(
        count=count,
        errors=errors,
        mean_ns=latency_sum / count if count else None,
        max_ns=latency_max,
        quantiles_ns=dict(zip(qs, values, strict=True)),
    )


@dataclass(frozen=True, slots=True)
class MinutePoint:
    """One minute of a model (versions merged or one version): counts and percentiles."""

    minute_start_s: int
    count: int
    errors: int
    throughput_per_s: float
    p50_ns: float | None
    p95_ns: float | None
    p99_ns: float | None


def minute_series(
    connection: sa.Connection,
    model: str,
    *,
    start_s: int,
    end_s: int,
    version: str | None = None,
) -> list[MinutePoint]:
    """Per-minute count, errors, throughput and latency percentiles (versions merged)."""
    table = MinuteRollup.__table__
    rows = connection.execute(
        sa.select(table.c.minute_start_s, table.c.count, table.c.errors, table.c.histogram)
        .where(*_rollup_filter(model, version, start_s, end_s))
        .order_by(table.c.minute_start_s)
    ).all()
    merged: dict[int, list] = {}
    for row in rows:
        entry = merged.setdefault(row.minute_start_s, [0, 0, {}])
        entry[0] += row.count
        entry[1] += row.errors
        merge_into(entry[2], row.histogram)
    points = []
    for minute, (count, errors, histogram) in sorted(merged.items()):
        p50, p95, p99 = quantiles(histogram, (0.5, 0.95, 0.99))
        points.append(MinutePoint(minute, count, errors, count / MINUTE_S, p50, p95, p99))
    return points
