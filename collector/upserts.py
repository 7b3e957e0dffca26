"""Merging derived figures and dead letters into the store, inside the caller's transaction.

Rollups, minute and hour rows, are read FOR UPDATE and written back merged (the
histogram merge is Python's, and so are the percentiles recomputed from it), in one
order for every writer (minutes before hours, each by key) so concurrent collectors
cannot deadlock; delivery ranges extend the range a run continues or start a new one;
drop counts and dead letters are single upserts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from inferloop.store.dialect import dialect_insert
from inferloop.store.sketch import merge_into, percentiles
from inferloop.store.tables import DeadLetter, DeliveryRange, HourRollup, MinuteRollup, SdkDrops

from .rejection import Rejection
from .rollups import DeliveryRun, DropKey, RollupAggregate, RollupKey, hour_aggregates

MAX_DEAD_LETTER_BYTES = 1024 * 1024
"""Raw bytes kept per dead letter; ``raw_size`` records the original length."""


def update_rollups(
    connection: sa.Connection,
    aggregates: Mapping[RollupKey, RollupAggregate],
    hours: Mapping[RollupKey, RollupAggregate] | None = None,
) -> None:
    """Add per-minute aggregates to ``minute_rollups`` and per-hour ones to ``hour_rollups``
    (``hours``: ``hour_aggregates(aggregates)`` when not given).

    Minutes are locked before hours, each in key order: one lock order for every writer.
    """
    if not aggregates:
        return
    if hours is None:
        hours = hour_aggregates(dict(aggregates))
    _merge_rows(connection, MinuteRollup.__table__, "minute_start_s", aggregates)
    _merge_rows(connection, HourRollup.__table__, "hour_start_s", hours)


def _merge_rows(
    connection: sa.Connection,
    table: sa.Table,
    time_column: str,
    aggregates: Mapping[RollupKey, RollupAggregate],
) -> None:
    """Add ``aggregates`` to the rollup rows of ``table`` (rows made empty first if new),
    their percentiles recomputed from the merged histograms."""
    keys = sorted(aggregates)  # one lock order for every writer: no deadlocks
    connection.execute(
        dialect_insert(connection, table).on_conflict_do_nothing(),
        [
            {
                "model": m,
                "version": v,
                time_column: t,
                "count": 0,
                "errors": 0,
                "latency_sum_ns": 0,
                "latency_max_ns": 0,
                "histogram": {},
                "device_count": 0,
                "device_time_sum_ns": 0,
                "device_time_max_ns": 0,
            }
            for m, v, t in keys
        ],
    )
    time_of = table.c[time_column]
    existing: dict[RollupKey, Any] = {}
    by_series: dict[tuple[str, str], list[int]] = defaultdict(list)
    for m, v, t in keys:
        by_series[(m, v)].append(t)
    for (model, version), starts in by_series.items():
        query = (
            sa.select(table)
            .where(table.c.model == model, table.c.version == version, time_of.in_(starts))
            .order_by(time_of)
            .with_for_update()
        )
        for row in connection.execute(query):
            existing[(row.model, row.version, row._mapping[time_column])] = row
    updates = []
    for key in keys:
        row = existing[key]
        add = aggregates[key]
        histogram = merge_into(dict(row.histogram), add.histogram)
        p50, p95, p99 = percentiles(histogram)
        updates.append(
            {
                "b_model": key[0],
                "b_version": key[1],
                "b_start": key[2],
                "count": row.count + add.count,
                "errors": row.errors + add.errors,
                "latency_sum_ns": row.latency_sum_ns + add.latency_sum_ns,
                "latency_max_ns": max(row.latency_max_ns, add.latency_max_ns),
                "histogram": histogram,
                "p50_ns": p50,
                "p95_ns": p95,
                "p99_ns": p99,
                "device_count": row.device_count + add.device_count,
                "device_time_sum_ns": row.device_time_sum_ns + add.device_time_sum_ns,
                "device_time_max_ns": max(row.device_time_max_ns, add.device_time_max_ns),
            }
        )
    figures = [name for name in updates[0] if not name.startswith("b_")]
    connection.execute(
        sa.update(table)
        .where(
            table.c.model == sa.bindparam("b_model"),
            table.c.version == sa.bindparam("b_version"),
            time_of == sa.bindparam("b_start"),
        )
        .values(
            {
                name: sa.bindparam(name, type_=sa.JSON if name == "histogram" else None)
                for name in figures
            }
        ),
        updates,
    )


def update_delivery(connection: sa.Connection, runs: Sequence[DeliveryRun]) -> None:
    """Record runs of contiguous sequence numbers per emitter and model."""
    table = DeliveryRange.__table__
    greatest = sa.func.max if connection.dialect.name == "sqlite" else sa.func.greatest
    for emitter, model, start, end, first, last in runs:
        # Extend the range this run continues, if there is one; else start a new one.
        extended = connection.execute(
            sa.update(table)
            .where(
                table.c.emitter_id == emitter,
                table.c.model == model,
                table.c.seq_end == start - 1,
            )
            .values(seq_end=end, last_time_ns=greatest(table.c.last_time_ns, last))
        )
        if extended.rowcount == 0:
            connection.execute(
                sa.insert(table).values(
                    emitter_id=emitter,
                    model=model,
                    seq_start=start,
                    seq_end=end,
                    first_time_ns=first,
                    last_time_ns=last,
                )
            )


def update_sdk_drops(connection: sa.Connection, totals: Mapping[DropKey, int]) -> None:
    """Add the SDK's reported drops to ``sdk_drops``."""
    if not totals:
        return
    table = SdkDrops.__table__
    statement = dialect_insert(connection, table)
    statement = statement.on_conflict_do_update(
        index_elements=["model", "minute_start_s", "reason"],
        set_={"count": table.c.count + statement.excluded.count},
    )
    connection.execute(
        statement,
        [
            {"model": m, "minute_start_s": t, "reason": r, "count": c}
            for (m, t, r), c in sorted(totals.items())
        ],
    )


def write_dead_letters(
    connection: sa.Connection, rejections: Sequence[Rejection], received_at_ns: int
) -> int:
    """Insert dead letters (once per Kafka message/event position); return rows added."""
    if not rejections:
        return 0
    statement = dialect_insert(connection, DeadLetter.__table__).on_conflict_do_nothing()
    result = connection.execute(
        statement,
        [
            {
                "received_at_ns": received_at_ns,
                "source": r.source,
                "topic": r.topic,
                "partition": r.partition,
                "offset": r.offset,
                "event_index": r.event_index,
                "reason": r.reason,
                "raw": r.raw[:MAX_DEAD_LETTER_BYTES],
                "raw_size": len(r.raw),
            }
            for r in rejections
        ],
    )
    return max(result.rowcount, 0)
