"""Read-side queries over the ingest tables: latency percentiles, series, completeness."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import sqlalchemy as sa

from .sketch import merge_into, quantiles
from .tables import DeliveryRange, Label, MinuteRollup, SdkDrops

NS_PER_S = 1_000_000_000


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
        points.append(MinutePoint(minute, count, errors, count / 60.0, p50, p95, p99))
    return points


@dataclass(frozen=True, slots=True)
class Completeness:
    """How much of what the SDKs emitted for a model in a window reached the store."""

    model: str
    start_ns: int
    end_ns: int
    received: int
    lost: int
    sdk_dropped: dict[str, int] = field(default_factory=dict)

    @property
    def emitted(self) -> int:
        return self.received + self.lost

    @property
    def received_share(self) -> float | None:
        return self.received / self.emitted if self.emitted else None

    @property
    def sdk_dropped_total(self) -> int:
        return sum(self.sdk_dropped.values())


def completeness(
    connection: sa.Connection, model: str, *, start_ns: int, end_ns: int
) -> Completeness:
    """Received vs. lost (sequence gaps) events of ``model`` in ``[start_ns, end_ns)``.

    ``received`` counts inference events (by start time, from rollups, so whole
    minutes) and labels. A gap in an emitter's sequence is charged to the model
    and time of the first event received after it; a gap at the end of a
    sequence is invisible until the emitter sends again.
    """
    minute_ns = 60 * NS_PER_S
    start_s = start_ns // minute_ns * 60
    end_s = -(-end_ns // minute_ns) * 60
    rollups = MinuteRollup.__table__
    received = connection.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(rollups.c.count), 0)).where(
            rollups.c.model == model,
            rollups.c.minute_start_s >= start_s,
            rollups.c.minute_start_s < end_s,
        )
    )
    labels = Label.__table__
    received += connection.scalar(
        sa.select(sa.func.count()).where(
            labels.c.model == model, labels.c.time_ns >= start_ns, labels.c.time_ns < end_ns
        )
    )
    ranges = DeliveryRange.__table__
    emitters = (
        sa.select(ranges.c.emitter_id)
        .where(
            ranges.c.model == model,
            ranges.c.last_time_ns >= start_ns,
            ranges.c.first_time_ns < end_ns,
        )
        .distinct()
    )
    rows = connection.execute(
        sa.select(
            ranges.c.emitter_id,
            ranges.c.model,
            ranges.c.seq_start,
            ranges.c.seq_end,
            ranges.c.first_time_ns,
        )
        .where(ranges.c.emitter_id.in_(emitters))
        .order_by(ranges.c.emitter_id, ranges.c.seq_start)
    ).all()
    lost = 0
    highest_seen: dict[str, int] = defaultdict(lambda: -1)
    for row in rows:
        gap = row.seq_start - highest_seen[row.emitter_id] - 1
        if gap > 0 and row.model == model and start_ns <= row.first_time_ns < end_ns:
            lost += gap
        highest_seen[row.emitter_id] = max(highest_seen[row.emitter_id], row.seq_end)
    drops = SdkDrops.__table__
    dropped = dict(
        connection.execute(
            sa.select(drops.c.reason, sa.func.sum(drops.c.count))
            .where(
                drops.c.model == model,
                drops.c.minute_start_s >= start_s,
                drops.c.minute_start_s < end_s,
            )
            .group_by(drops.c.reason)
        ).all()
    )
    return Completeness(
        model=model,
        start_ns=start_ns,
        end_ns=end_ns,
        received=int(received),
        lost=lost,
        sdk_dropped={reason: int(count) for reason, count in dropped.items()},
    )
