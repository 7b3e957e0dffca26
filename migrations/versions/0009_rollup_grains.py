"""Rollup grains: percentiles and GPU time on the minute rollups, and hour rollups.

Each minute row gains the p50/p95/p99 of its histogram and its GPU time (events that
measured it, their sum and maximum); ``hour_rollups`` holds the same figures per hour, the
minutes merged. Both are backfilled here, in batches of rows read in key order (the same
statements on SQLite and PostgreSQL): percentiles from the stored histograms, GPU time
from the raw events still kept (minutes whose events retention already pruned keep 0),
and every hour from its minutes. The percentile rule is the store's
(`inferloop.store.sketch.percentiles`), so a backfilled row equals a written one.

Revision ID: 0009_rollup_grains
Revises: 0008_drift_cells
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import sqlalchemy as sa
from alembic import op

from inferloop.store.sketch import merge_into, percentiles

revision: str = "0009_rollup_grains"
down_revision: str | None = "0008_drift_cells"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 5_000
_MINUTE_NS = 60_000_000_000
_HOUR_S = 3600
_PERCENTILES = ("p50_ns", "p95_ns", "p99_ns")
_DEVICE = ("device_count", "device_time_sum_ns", "device_time_max_ns")
_SUMS = ("count", "errors", "latency_sum_ns", "device_count", "device_time_sum_ns")
_MAXIMA = ("latency_max_ns", "device_time_max_ns")


def _figures() -> list[sa.Column]:
    return [
        *(sa.Column(name, sa.Double(), nullable=True) for name in _PERCENTILES),
        *(sa.Column(name, sa.BigInteger(), server_default="0", nullable=False) for name in _DEVICE),
    ]


def _rollups(name: str, time_column: str) -> sa.TableClause:
    return sa.table(
        name,
        *(
            sa.column(c)
            for c in ("model", "version", time_column, "count", "errors")
            + ("latency_sum_ns", "latency_max_ns", *_PERCENTILES, *_DEVICE)
        ),
        sa.column("histogram", sa.JSON()),
    )


def _minute_rows(connection: sa.Connection, minutes: sa.TableClause) -> Iterator[sa.Row]:
    """Every minute row in key order, `_BATCH` at a time (keyset pages: no OFFSET scans)."""
    key = (minutes.c.model, minutes.c.version, minutes.c.minute_start_s)
    after: tuple | None = None
    while True:
        query = sa.select(minutes).order_by(*key).limit(_BATCH)
        if after is not None:
            query = query.where(sa.tuple_(*key) > sa.tuple_(*map(sa.literal, after)))
        rows = connection.execute(query).all()
        yield from rows
        if len(rows) < _BATCH:
            return
        last = rows[-1]
        after = (last.model, last.version, last.minute_start_s)


def _backfill_minutes(connection: sa.Connection, minutes: sa.TableClause) -> None:
    events = sa.table(
        "events",
        sa.column("model"),
        sa.column("version"),
        sa.column("start_time_ns", sa.BigInteger()),
        sa.column("device_time_ns", sa.BigInteger()),
    )
    minute = (events.c.start_time_ns // _MINUTE_NS * 60).label("minute")
    device = connection.execute(
        sa.select(
            events.c.model,
            events.c.version,
            minute,
            sa.func.count(events.c.device_time_ns),
            sa.func.sum(events.c.device_time_ns),
            sa.func.max(events.c.device_time_ns),
        )
        .where(events.c.device_time_ns.is_not(None))
        .group_by(events.c.model, events.c.version, minute)
    ).all()
    measured = {(m, v, int(t)): (int(c), int(s), int(x)) for m, v, t, c, s, x in device}
    update = (
        sa.update(minutes)
        .where(
            minutes.c.model == sa.bindparam("b_model"),
            minutes.c.version == sa.bindparam("b_version"),
            minutes.c.minute_start_s == sa.bindparam("b_start"),
        )
        .values({name: sa.bindparam(name) for name in _PERCENTILES + _DEVICE})
    )
    pending: list[dict] = []
    for row in _minute_rows(connection, minutes):
        key = (row.model, row.version, row.minute_start_s)
        values = dict(zip(_PERCENTILES, percentiles(row.histogram or {}), strict=True))
        values.update(zip(_DEVICE, measured.get(key, (0, 0, 0)), strict=True))
        pending.append({"b_model": key[0], "b_version": key[1], "b_start": key[2], **values})
        if len(pending) >= _BATCH:
            connection.execute(update, pending)
            pending = []
    if pending:
        connection.execute(update, pending)


def _backfill_hours(connection: sa.Connection, minutes: sa.TableClause) -> None:
    hours = _rollups("hour_rollups", "hour_start_s")
    pending: list[dict] = []
    current: dict | None = None

    def close(hour: dict) -> None:
        hour.update(zip(_PERCENTILES, percentiles(hour["histogram"]), strict=True))
        pending.append(hour)
        if len(pending) >= _BATCH:
            connection.execute(sa.insert(hours), pending)
            pending.clear()

    for row in _minute_rows(connection, minutes):  # key order: an hour's minutes adjoin
        key = (row.model, row.version, row.minute_start_s // _HOUR_S * _HOUR_S)
        if (
            current is None
            or (current["model"], current["version"], current["hour_start_s"]) != key
        ):
            if current is not None:
                close(current)
            current = {
                **dict(zip(("model", "version", "hour_start_s"), key, strict=True)),
                "histogram": {},
                **dict.fromkeys(_SUMS + _MAXIMA, 0),
            }
        for name in _SUMS:
            current[name] += getattr(row, name)
        for name in _MAXIMA:
            current[name] = max(current[name], getattr(row, name))
        merge_into(current["histogram"], row.histogram or {})
    if current is not None:
        close(current)
    if pending:
        connection.execute(sa.insert(hours), pending)


def upgrade() -> None:
    for column in _figures():
        op.add_column("minute_rollups", column)
    op.create_table(
        "hour_rollups",
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("version", sa.String(length=200), nullable=False),
        sa.Column("hour_start_s", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.BigInteger(), nullable=False),
        sa.Column("latency_sum_ns", sa.BigInteger(), nullable=False),
        sa.Column("latency_max_ns", sa.BigInteger(), nullable=False),
        sa.Column("histogram", sa.JSON(), nullable=False),
        *_figures(),
        sa.PrimaryKeyConstraint("model", "version", "hour_start_s", name=op.f("pk_hour_rollups")),
    )
    op.create_index("ix_hour_rollups_hour_start_s", "hour_rollups", ["hour_start_s"], unique=False)
    connection = op.get_bind()
    minutes = _rollups("minute_rollups", "minute_start_s")
    _backfill_minutes(connection, minutes)
    _backfill_hours(connection, minutes)


def downgrade() -> None:
    op.drop_index("ix_hour_rollups_hour_start_s", table_name="hour_rollups")
    op.drop_table("hour_rollups")
    with op.batch_alter_table("minute_rollups") as batch:
        for name in reversed(_PERCENTILES + _DEVICE):
            batch.drop_column(name)
