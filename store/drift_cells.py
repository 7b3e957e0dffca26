"""The drift table: one row per (model, version, kind, feature, window) the analyzer tested.

Findings record only what alarmed; the heatmap needs every test, drifted or not, so the
analyzer writes each window's cells in the transaction that writes its findings. The
primary key starts with (model, window_end_ns): a model over a time range is a range scan
of it, and a re-run of the same window upserts instead of adding.

The analyzer runs every minute, so a week is some 10,000 windows per feature: the hour
table (`DriftCellHour`) keeps each hour's counts per feature, recomputed from the hour's
cells whenever they are written, so long ranges read hours instead of minutes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from .analysis import Finding
from .base import Base
from .dialect import dialect_insert


class DriftCell(Base):
    """One test of one column (or of the dataset, or an embedding) in one window.

    ``drifted`` is the test's verdict at its threshold; ``alarmed`` says the analyzer
    raised (or kept) a finding for it, ``finding_id`` which one. ``version`` is the
    event version the window was read for; ``baseline`` describes what it was compared with.
    """

    __tablename__ = "drift_cells"

    model: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    window_end_ns: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    version: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    feature: Mapped[str] = mapped_column(sa.String(400), primary_key=True)
    window_start_ns: Mapped[int] = mapped_column(sa.BigInteger)
    column_kind: Mapped[str | None] = mapped_column(sa.String(16))
    test: Mapped[str] = mapped_column(sa.String(64))
    statistic: Mapped[float | None] = mapped_column(sa.Float)
    score: Mapped[float | None] = mapped_column(sa.Float)
    score_kind: Mapped[str] = mapped_column(sa.String(16))
    threshold: Mapped[float | None] = mapped_column(sa.Float)
    effect_name: Mapped[str | None] = mapped_column(sa.String(32))
    effect: Mapped[float | None] = mapped_column(sa.Float)
    drifted: Mapped[bool] = mapped_column(sa.Boolean)
    alarmed: Mapped[bool] = mapped_column(sa.Boolean)
    reference_rows: Mapped[int | None] = mapped_column(sa.BigInteger)
    current_rows: Mapped[int | None] = mapped_column(sa.BigInteger)
    baseline: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    finding_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    analyzed_at_ns: Mapped[int] = mapped_column(sa.BigInteger)


class DriftCellHour(Base):
    """The cells of one feature whose window ended in one hour: how many, how many drifted
    and alarmed, the latest window's end and the latest finding raised."""

    __tablename__ = "drift_cell_hours"

    model: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    hour_start_ns: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    version: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    feature: Mapped[str] = mapped_column(sa.String(400), primary_key=True)
    windows: Mapped[int] = mapped_column(sa.BigInteger)
    drifted_windows: Mapped[int] = mapped_column(sa.BigInteger)
    alarmed_windows: Mapped[int] = mapped_column(sa.BigInteger)
    last_end_ns: Mapped[int] = mapped_column(sa.BigInteger)
    finding_id: Mapped[int | None] = mapped_column(sa.BigInteger)


HOUR_NS = 3600 * 1_000_000_000
_CELLS = DriftCell.__table__
_HOURS = DriftCellHour.__table__
_FINDINGS = Finding.__table__
_KEY = ("model", "window_end_ns", "version", "kind", "feature")
_HOUR_KEY = ("model", "hour_start_ns", "version", "kind", "feature")
CELL_COLUMNS = tuple(column.name for column in _CELLS.columns)
"""Every column of a cell, in table order: what `write_cells` expects in each mapping."""


def window_counts(start_ns: int, bucket_ns: int, *, where) -> sa.Select:
    """Cells grouped by (bucket from `start_ns`, version, kind, feature): the counts of the
    heatmap and of the hour table, over the cells `where` selects."""
    bucket = ((_CELLS.c.window_end_ns - start_ns) // bucket_ns).label("bucket")
    return (
        sa.select(
            bucket,
            _CELLS.c.version,
            _CELLS.c.kind,
            _CELLS.c.feature,
            sa.func.count().label("windows"),
            sa.func.sum(sa.case((_CELLS.c.drifted, 1), else_=0)).label("drifted_windows"),
            sa.func.sum(sa.case((_CELLS.c.alarmed, 1), else_=0)).label("alarmed_windows"),
            sa.func.max(_CELLS.c.window_end_ns).label("last_end_ns"),
            sa.func.max(_CELLS.c.finding_id).label("finding_id"),
        )
        .where(*where)
        .group_by(bucket, _CELLS.c.version, _CELLS.c.kind, _CELLS.c.feature)
    )


def write_cells(connection: sa.Connection, cells: Sequence[Mapping[str, Any]]) -> int:
    """Insert the cells, or overwrite those of a window already written, and recompute the
    hours they fall in; return the count."""
    if not cells:
        return 0
    rows = [{name: cell[name] for name in CELL_COLUMNS} for cell in cells]
    insert = dialect_insert(connection, _CELLS)
    connection.execute(
        insert.on_conflict_do_update(
            index_elements=list(_KEY),
            set_={name: insert.excluded[name] for name in CELL_COLUMNS if name not in _KEY},
        ),
        rows,
    )
    hours = sorted({(row["model"], row["window_end_ns"] // HOUR_NS * HOUR_NS) for row in rows})
    for model, hour_ns in hours:
        _recompute_hour(connection, model, hour_ns)
    return len(rows)


def _recompute_hour(connection: sa.Connection, model: str, hour_ns: int) -> None:
    """The hour's rows from its cells (a re-written window is counted once, not again)."""
    counts = window_counts(
        hour_ns,
        HOUR_NS,
        where=(
            _CELLS.c.model == model,
            _CELLS.c.window_end_ns >= hour_ns,
            _CELLS.c.window_end_ns < hour_ns + HOUR_NS,
        ),
    ).subquery()
    select = sa.select(
        sa.literal(model, sa.String),
        sa.literal(hour_ns, sa.BigInteger) + counts.c.bucket,
        counts.c.version,
        counts.c.kind,
        counts.c.feature,
        counts.c.windows,
        counts.c.drifted_windows,
        counts.c.alarmed_windows,
        counts.c.last_end_ns,
        counts.c.finding_id,
    ).where(sa.true())  # SQLite's INSERT ... SELECT ... ON CONFLICT needs a WHERE
    names = [column.name for column in _HOURS.columns]
    insert = dialect_insert(connection, _HOURS).from_select(names, select)
    connection.execute(
        insert.on_conflict_do_update(
            index_elements=list(_HOUR_KEY),
            set_={name: insert.excluded[name] for name in names if name not in _HOUR_KEY},
        )
    )


def any_drift_cell(connection: sa.Connection, model: str) -> bool:
    """Whether the analyzer ever tested drift of `model` (the key starts with the model)."""
    query = sa.select(_CELLS.c.model).where(_CELLS.c.model == model).limit(1)
    return connection.execute(query).first() is not None


def drift_cells(
    connection: sa.Connection,
    model: str,
    *,
    start_ns: int,
    end_ns: int,
    after: tuple[int, str, str, str] | None = None,
    limit: int | None = None,
) -> list[sa.Row]:
    """The model's cells whose window ends in [start_ns, end_ns), in key order, with the
    status and report path of each cell's finding.

    `after` is the key (window_end_ns, version, kind, feature) of the last cell of the
    previous page (keyset pagination on the primary key).
    """
    query = (
        sa.select(
            _CELLS,
            _FINDINGS.c.status.label("finding_status"),
            _FINDINGS.c.report_path.label("report_path"),
        )
        .outerjoin(_FINDINGS, _FINDINGS.c.id == _CELLS.c.finding_id)
        .where(
            _CELLS.c.model == model,
            _CELLS.c.window_end_ns >= start_ns,
            _CELLS.c.window_end_ns < end_ns,
        )
        .order_by(*(_CELLS.c[name] for name in _KEY[1:]))
    )
    if after is not None:
        key = sa.tuple_(*(_CELLS.c[name] for name in _KEY[1:]))
        query = query.where(key > sa.tuple_(*after))
    if limit is not None:
        query = query.limit(limit)
    return list(connection.execute(query))
