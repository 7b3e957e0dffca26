"""Reads for the dashboard pages: per-model totals, bucketed series, open findings.

Pages ask for whole ranges (an hour to a week), so these aggregate in SQL wherever the
answer is a sum (calls, errors: `GROUP BY` over the minute rollups, served by the rollups'
indexes) and merge latency histograms only where a percentile is asked for, one merged
histogram per chart bucket rather than one quantile computation per minute.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from .analysis import Finding
from .sketch import bucket_value, merge_into
from .tables import MinuteRollup
from .vocabulary import ACTIVE_STATUSES

__all__ = [
    "BucketSeries",
    "ModelTotals",
    "bucketed_series",
    "model_known",
    "call_buckets",
    "model_totals",
    "open_findings_by_model",
]

_ROLLUPS = MinuteRollup.__table__
_FINDINGS = Finding.__table__
_QS = (0.5, 0.95, 0.99)
# The histogram as the driver returns it: text on SQLite (decoded here with orjson, about
# 3x faster than SQLAlchemy's json.loads per row), already a dict from psycopg.
_HISTOGRAM = sa.type_coerce(_ROLLUPS.c.histogram, sa.Text).label("histogram")


def _decoded(value: Any) -> Mapping[str, int]:
    if isinstance(value, str | bytes):
        return orjson.loads(value)
    return value or {}


def _quantiles(histogram: Mapping[str, int]) -> list[float | None]:
    """p50, p95, p99 of a merged histogram: the same ranks and bucket values as
    `sketch.quantiles`, in one pass over the sorted buckets and without numpy (a chart
    asks for hundreds of small histograms, where numpy's per-call cost dominates)."""
    items = sorted((int(k), c) for k, c in histogram.items() if c > 0)
    total = sum(c for _, c in items)
    if total == 0:
        return [None] * len(_QS)
    found: list[float | None] = []
    index, below = 0, 0  # `below`: the count in buckets before `index`
    for q in _QS:  # ascending, so the walk only moves forward
        rank = math.floor(q * (total - 1))
        while below + items[index][1] <= rank:
            below += items[index][1]
            index += 1
        found.append(bucket_value(items[index][0]))
    return found


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
    its percentiles."""
    query = (
        sa.select(_ROLLUPS.c.model, _ROLLUPS.c.count, _ROLLUPS.c.errors, _HISTOGRAM)
        .where(_ROLLUPS.c.minute_start_s >= start_s, _ROLLUPS.c.minute_start_s < end_s)
        .order_by(_ROLLUPS.c.model)
    )
    if model is not None:
        query = query.where(_ROLLUPS.c.model == model)
    rows = connection.execute(query)
    merged: dict[str, list] = {}
    for row in rows:
        entry = merged.setdefault(row.model, [0, 0, {}])
        entry[0] += row.count
        entry[1] += row.errors
        merge_into(entry[2], _decoded(row.histogram))
    totals = []
    for model, (count, errors, histogram) in merged.items():
        p50, p95, p99 = _quantiles(histogram)
        totals.append(ModelTotals(model, count, errors, p50, p95, p99))
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
    """Columns of one chart: bucket starts and, per bucket, calls, errors, percentiles (ms).

    A bucket with no calls has count 0 and None percentiles, so gaps stay gaps.
    """

    t: list[int]
    count: list[int]
    errors: list[int]
    p50_ms: list[float | None]
    p95_ms: list[float | None]
    p99_ms: list[float | None]

    def to_dict(self) -> dict[str, list]:
        return {
            "t": self.t,
            "count": self.count,
            "errors": self.errors,
            "p50": self.p50_ms,
            "p95": self.p95_ms,
            "p99": self.p99_ms,
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
    a minute): versions merged, and per version (``versions`` to keep only some)."""
    query = sa.select(
        _ROLLUPS.c.version,
        _ROLLUPS.c.minute_start_s,
        _ROLLUPS.c.count,
        _ROLLUPS.c.errors,
        _HISTOGRAM,
    ).where(
        _ROLLUPS.c.model == model,
        _ROLLUPS.c.minute_start_s >= start_s,
        _ROLLUPS.c.minute_start_s < end_s,
    )
    if versions is not None:
        query = query.where(_ROLLUPS.c.version.in_(list(versions)))
    starts = list(range(start_s, end_s, step_s))
    total: dict[int, list] = {}
    by_version: dict[str, dict[int, list]] = {}
    for row in connection.execute(query):
        index = (row.minute_start_s - start_s) // step_s
        histogram = _decoded(row.histogram)
        for cells in (total, by_version.setdefault(row.version, {})):
            entry = cells.setdefault(index, [0, 0, {}])
            entry[0] += row.count
            entry[1] += row.errors
            merge_into(entry[2], histogram)
    return _columns(starts, total), {
        version: _columns(starts, cells) for version, cells in sorted(by_version.items())
    }


def _columns(starts: list[int], cells: dict[int, list]) -> BucketSeries:
    count, errors, p50, p95, p99 = [], [], [], [], []
    for index in range(len(starts)):
        calls, errs, histogram = cells.get(index, (0, 0, {}))
        q = _quantiles(histogram)
        count.append(calls)
        errors.append(errs)
        for column, value in zip((p50, p95, p99), q, strict=True):
            column.append(None if value is None else round(value / 1e6, 3))
    return BucketSeries(starts, count, errors, p50, p95, p99)


def model_known(connection: sa.Connection, model: str) -> bool:
    """Whether any minute of `model` was ever rolled up (the rollups' key starts with it)."""
    query = sa.select(_ROLLUPS.c.model).where(_ROLLUPS.c.model == model).limit(1)
    return connection.execute(query).first() is not None
