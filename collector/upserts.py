"""Merging derived figures and dead letters into the store, inside the caller's transaction.

Rollups are read FOR UPDATE and written back merged (the histogram merge is
Python's), in one key order for every writer so concurrent collectors cannot
deadlock; delivery ranges extend the range a run continues or start a new one;
drop counts and dead letters are single upserts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from inferloop.store.dialect import dialect_insert
from inferloop.store.sketch import merge_into
from inferloop.store.tables import DeadLetter, DeliveryRange, MinuteRollup, SdkDrops

from .rejection import Rejection
from .rollups import DeliveryRun, DropKey, MinuteAggregate, RollupKey

MAX_DEAD_LETTER_BYTES = 1024 * 1024
"""Raw bytes kept per dead letter; ``raw_size`` records the original length."""


def update_rollups(
    connection: sa.Connection, aggregates: Mapping[RollupKey, MinuteAggregate]
) -> None:
    """Add per-minute aggregates to ``minute_rollups``."""
    if not aggregates:
        return
    table = MinuteRollup.__table__
    keys = sorted(aggregates)  # one lock order for every writer: no deadlocks
    connection.execute(
        dialect_insert(connection, table).on_conflict_do_nothing(),
        [
            {
                "model": m,
                "version": v,
                "minute_start_s": t,
                "count": 0,
                "errors": 0,
                "latency_sum_ns": 0,
                "latency_max_ns": 0,
                "histogram": {},
            }
            for m, v, t in keys
        ],
    )
    existing: dict[RollupKey, Any] = {}
    by_series: dict[tuple[str, str], list[int]] = defaultdict(list)
    for m, v, t in keys:
        by_series[(m, v)].append(t)
    for (model, version), minutes in by_series.items():
        query = (
            sa.select(table)
            .where(
                table.c.model == model,
                table.c.version == version,
                table.c.minute_start_s.in_(minutes),
            )
            .order_by(table.c.minute_start_s)
            .with_for_update()
        )
        for row in connection.execute(query):
            existing[(row.model, row.version, row.minute_start_s)] = row
    updates = []
    for key in keys:
        row = existing[key]
        add = aggregates[key]
        updates.append(
            {
                "b_model": key[0],
                "b_version": key[1],
                "b_minute": key[2],
                "count": row.count + add.count,
                "errors": row.errors + add.errors,
                "latency_sum_ns": row.latency_sum_ns + add.latency_sum_ns,
                "latency_max_ns": max(row.latency_max_ns, add.latency_max_ns),
                "histogram": merge_into(dict(row.histogram), add.histogram),
            }
        )
    connection.execute(
        sa.update(table)
        .where(
            table.c.model == sa.bindparam("b_model"),
            table.c.version == sa.bindparam("b_version"),
            table.c.minute_start_s == sa.bindparam("b_minute"),
        )
        .values(
            count=sa.bindparam("count"),
            errors=sa.bindparam("errors"),
            latency_sum_ns=sa.bindparam("latency_sum_ns"),
            latency_max_ns=sa.bindparam("latency_max_ns"),
            histogram=sa.bindparam("histogram", type_=sa.JSON),
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
