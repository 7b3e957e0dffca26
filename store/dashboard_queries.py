"""Reads for the dashboard pages and the model API: totals, bucketed series, findings.

Pages ask for whole ranges (an hour to a week), so these aggregate in SQL wherever the
answer is a sum (calls, errors: `GROUP BY` over the rollups, served by their indexes) and
read percentiles precomputed at ingest wherever a chart bucket or range is one rollup row:
a minute bucket of one version reads its minute row, an hour bucket its hour row
(`hour_rollups`), and a range's whole hours come from the hour rows, its ragged edges from
minutes. Histograms are decoded only where a bucket spans several rows (all versions
together, or several minutes), and their percentiles found in one numpy pass over all
their buckets (`sketch.merged_percentiles`) rather than by merging dicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from .analysis import Finding
from .sketch import merged_percentiles
from .tables import HourRollup, MinuteRollup
from .vocabulary import ACTIVE_STATUSES

__all__ = [
    "HOUR_S",
    "BucketSeries",
    "ModelTotals",
    "RangeSummary",
    "bucketed_series",
    "call_buckets",
    "model_known",
    "model_totals",
    "open_findings_by_model",
    "range_summary",
]

_ROLLUPS = MinuteRollup.__table__
_HOURS = HourRollup.__table__
_FINDINGS = Finding.__table__
HOUR_S = 3600


def _columns_of(table: sa.Table, start: sa.ColumnElement) -> list[sa.ColumnElement]:
    """What every read takes from a rollup row, the same labels at both grains. The
    histogram comes as text (decoded with orjson, only where a bucket merges rows: psycopg
    would otherwise parse every row's JSON)."""
    c = table.c
    return [
        c.model,
        c.version,
        start.label("start"),
        c.count,
        c.errors,
        c.latency_sum_ns,
        c.latency_max_ns,
        c.p50_ns,
        c.p95_ns,
        c.p99_ns,
        c.device_count,
        c.device_time_sum_ns,
        c.device_time_max_ns,
        sa.cast(c.histogram, sa.Text).label("histogram"),
    ]


class _Cell:
    """The rows that fall into one bucket (or range), summed; percentiles taken from the
    one row's precomputed ones, or from all the rows' histograms together."""

    __slots__ = (
        "count",
        "errors",
        "latency_sum_ns",
        "latency_max_ns",
        "device_count",
        "device_time_sum_ns",
        "device_time_max_ns",
        "_parts",
        "_decoded",
    )

    def __init__(self) -> None:
        self.count = self.errors = self.latency_sum_ns = self.latency_max_ns = 0
        self.device_count = self.device_time_sum_ns = self.device_time_max_ns = 0
        self._parts: list[tuple[tuple, Any]] = []
        self._decoded: list[Mapping[str, int]] | None = None

    def add_row(self, row: sa.Row) -> None:
        self._sum(row)
        self._parts.append(((row.p50_ns, row.p95_ns, row.p99_ns), row.histogram))

    def add_cell(self, cell: _Cell) -> None:
        self._sum(cell)
        self._parts.append((None, cell))

    def _sum(self, other) -> None:
        self.count += other.count
        self.errors += other.errors
        self.latency_sum_ns += other.latency_sum_ns
        self.latency_max_ns = max(self.latency_max_ns, other.latency_max_ns)
        self.device_count += other.device_count
        self.device_time_sum_ns += other.device_time_sum_ns
        self.device_time_max_ns = max(self.device_time_max_ns, other.device_time_max_ns)

    def histograms(self) -> list[Mapping[str, int]]:
        """The histograms of every row in the cell, decoded once."""
        if self._decoded is None:
            self._decoded = []
            for _, source in self._parts:
                if isinstance(source, _Cell):
                    self._decoded.extend(source.histograms())
                else:
                    self._decoded.append(_decoded(source))
        return self._decoded

    def percentiles(self) -> tuple[float | None, float | None, float | None]:
        if len(self._parts) == 1:
            stored, source = self._parts[0]
            return source.percentiles() if stored is None else stored
        return merged_percentiles(self.histograms()) if self._parts else (None, None, None)


def _decoded(source: Any) -> Mapping[str, int]:
    if isinstance(source, str | bytes):
        return orjson.loads(source)
    return source or {}


def _whole_hours(start_s: int, end_s: int) -> tuple[int, int]:
    """The first and last hour boundaries inside ``[start_s, end_s]`` (first >= last: none)."""
    return -(-start_s // HOUR_S) * HOUR_S, end_s // HOUR_S * HOUR_S


def _range_rows(
    connection: sa.Connection,
    *,
    start_s: int,
    end_s: int,
    model: str | None = None,
    versions: Sequence[str] | None = None,
    hours: bool = True,
) -> Iterable[sa.Row]:
    """The rollup rows covering ``[start_s, end_s)``: with `hours`, one hour row for each
    whole hour inside the range and minute rows for the rest; else minute rows only."""
    first_hour, last_hour = _whole_hours(start_s, end_s)
    minute = _ROLLUPS.c.minute_start_s
    minutes = sa.select(*_columns_of(_ROLLUPS, minute)).where(minute >= start_s, minute < end_s)
    queries = [(_ROLLUPS, minutes)]
    if hours and last_hour > first_hour:
        hour = _HOURS.c.hour_start_s
        whole = sa.select(*_columns_of(_HOURS, hour)).where(hour >= first_hour, hour < last_hour)
        queries = [
            (_HOURS, whole),
            (_ROLLUPS, minutes.where(sa.or_(minute < first_hour, minute >= last_hour))),
        ]
    for table, query in queries:
        if model is not None:
            query = query.where(table.c.model == model)
        if versions is not None:
            query = query.where(table.c.version.in_(list(versions)))
        yield from connection.execute(query)


@dataclass(frozen=True, slots=True)
class RangeSummary:
    """One model (or version) over a range: calls, errors, latency and GPU time (ns)."""

    count: int
    errors: int
    mean_ns: float | None
    max_ns: int | None
    p50_ns: float | None
    p95_ns: float | None
    p99_ns: float | None
    device_count: int
    device_mean_ns: float | None
    device_max_ns: int | None


def _summary(cell: _Cell) -> RangeSummary:
    p50, p95, p99 = cell.percentiles()
    return RangeSummary(
        count=cell.count,
        errors=cell.errors,
        mean_ns=cell.latency_sum_ns / cell.count if cell.count else None,
        max_ns=cell.latency_max_ns if cell.count else None,
        p50_ns=p50,
        p95_ns=p95,
        p99_ns=p99,
        device_count=cell.device_count,
        device_mean_ns=cell.device_time_sum_ns / cell.device_count if cell.device_count else None,
        device_max_ns=cell.device_time_max_ns if cell.device_count else None,
    )


def range_summary(
    connection: sa.Connection,
    model: str,
    *,
    start_s: int,
    end_s: int,
    version: str | None = None,
) -> RangeSummary:
    """`model` (or one `version`) over the minutes in ``[start_s, end_s)``: whole hours
    read from the hour rows, the edges from minutes."""
    cell = _Cell()
    versions = None if version is None else [version]
    for row in _range_rows(
        connection, start_s=start_s, end_s=end_s, model=model, versions=versions
    ):
        cell.add_row(row)
    return _summary(cell)


@dataclass(frozen=True, slots=True)
class ModelTotals:
    """One model over a range: calls, errors and latency percentiles (ns)."""

    model: str
    count: int
    errors: int
    p50_ns: float | None
    p95_ns: float | None
    p99_ns: float | None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.count if self.count else None


def model_totals(
    connection: sa.Connection, *, start_s: int, end_s: int, model: str | None = None
) -> list[ModelTotals]:
    """Every model (or only `model`) with rollups in ``[start_s, end_s)``, by name, with
    its percentiles; whole hours from the hour rows, the edges from minutes."""
    cells: dict[str, _Cell] = {}
    for row in _range_rows(connection, start_s=start_s, end_s=end_s, model=model):
        cell = cells.get(row.model)
        if cell is None:
            cell = cells[row.model] = _Cell()
        cell.add_row(row)
    totals = []
    for name, cell in sorted(cells.items()):
        p50, p95, p99 = cell.percentiles()
        totals.append(ModelTotals(name, cell.count, cell.errors, p50, p95, p99))
    return totals


def call_buckets(
    connection: sa.Connection, *, start_s: int, end_s: int, step_s: int
) -> dict[str, dict[int, int]]:
    """model → {bucket start (s): calls}, summed in SQL (no histogram is read): sparklines."""
    # `//` is SQL integer division on both back ends (the minutes are all >= start_s).
    bucket = (_ROLLUPS.c.minute_start_s - start_s) // step_s
    query = (
        sa.select(_ROLLUPS.c.model, bucket.label("bucket"), sa.func.sum(_ROLLUPS.c.count))
        .where(_ROLLUPS.c.minute_start_s >= start_s, _ROLLUPS.c.minute_start_s < end_s)
        .group_by(_ROLLUPS.c.model, "bucket")
    )
    found: dict[str, dict[int, int]] = {}
    for model, index, calls in connection.execute(query):
        found.setdefault(model, {})[start_s + int(index) * step_s] = int(calls)
    return found


def open_findings_by_model(connection: sa.Connection) -> dict[str, dict[str, int]]:
    """model → {severity: count} of its pending and open findings."""
    query = (
        sa.select(_FINDINGS.c.model, _FINDINGS.c.severity, sa.func.count())
        .where(_FINDINGS.c.status.in_(ACTIVE_STATUSES))
        .group_by(_FINDINGS.c.model, _FINDINGS.c.severity)
    )
    found: dict[str, dict[str, int]] = {}
    for model, severity, count in connection.execute(query):
        found.setdefault(model, {})[severity] = int(count)
    return found


@dataclass(frozen=True, slots=True)
class BucketSeries:
    """Columns of one chart: bucket starts and, per bucket, calls, errors, latency
    percentiles and GPU time (ms; GPU time over the calls that measured it).

    A bucket with no calls has count 0 and None figures, so gaps stay gaps.
    """

    t: list[int]
    count: list[int]
    errors: list[int]
    p50_ms: list[float | None]
    p95_ms: list[float | None]
    p99_ms: list[float | None]
    gpu_count: list[int]
    gpu_mean_ms: list[float | None]
    gpu_max_ms: list[float | None]

    def to_dict(self) -> dict[str, list]:
        return {
            "t": self.t,
            "count": self.count,
            "errors": self.errors,
            "p50": self.p50_ms,
            "p95": self.p95_ms,
            "p99": self.p99_ms,
            "gpu_count": self.gpu_count,
            "gpu_mean": self.gpu_mean_ms,
            "gpu_max": self.gpu_max_ms,
        }


def bucketed_series(
    connection: sa.Connection,
    model: str,
    *,
    start_s: int,
    end_s: int,
    step_s: int,
    versions: Sequence[str] | None = None,
) -> tuple[BucketSeries, dict[str, BucketSeries]]:
    """The model's series over ``[start_s, end_s)`` in buckets of ``step_s`` (a multiple of
    a minute): versions merged, and per version (``versions`` to keep only some). Buckets
    of whole hours on hour boundaries read the hour rows (the last, unfinished hour its
    minutes); a version's minute bucket reads its minute row's percentiles."""
    hour_grain = step_s % HOUR_S == 0 and start_s % HOUR_S == 0
    by_version: dict[str, dict[int, _Cell]] = {}
    for row in _range_rows(
        connection,
        start_s=start_s,
        end_s=end_s,
        model=model,
        versions=versions,
        hours=hour_grain,
    ):
        cells = by_version.setdefault(row.version, {})
        index = (row.start - start_s) // step_s
        cell = cells.get(index)
        if cell is None:
            cell = cells[index] = _Cell()
        cell.add_row(row)
    total: dict[int, _Cell] = {}
    for version in sorted(by_version):
        for index, cell in by_version[version].items():
            merged = total.get(index)
            if merged is None:
                merged = total[index] = _Cell()
            merged.add_cell(cell)
    starts = list(range(start_s, end_s, step_s))
    return _series(starts, total), {
        version: _series(starts, cells) for version, cells in sorted(by_version.items())
    }


def _ms(value_ns: float | None) -> float | None:
    return None if value_ns is None else round(value_ns / 1e6, 3)


def _series(starts: list[int], cells: dict[int, _Cell]) -> BucketSeries:
    columns: tuple[list, ...] = tuple([] for _ in range(8))
    empty = _Cell()
    for index in range(len(starts)):
        cell = cells.get(index, empty)
        figures = (
            cell.count,
            cell.errors,
            *map(_ms, cell.percentiles()),
            cell.device_count,
            _ms(cell.device_time_sum_ns / cell.device_count) if cell.device_count else None,
            _ms(cell.device_time_max_ns) if cell.device_count else None,
        )
        for column, value in zip(columns, figures, strict=True):
            column.append(value)
    return BucketSeries(starts, *columns)


def model_known(connection: sa.Connection, model: str) -> bool:
    """Whether any minute of `model` was ever rolled up (the rollups' key starts with it)."""
    query = sa.select(_ROLLUPS.c.model).where(_ROLLUPS.c.model == model).limit(1)
    return connection.execute(query).first() is not None
