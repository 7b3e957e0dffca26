"""Reads for the dashboard pages: per-model totals, bucketed series, open findings.

Pages ask for whole ranges (an hour to a week), so these aggregate in SQL wherever the
answer is a sum (calls, errors: `GROUP BY` over the minute rollups, served by the rollups'
indexes) and merge latency histograms only where a percentile is asked for, one merged
histogram per chart bucket rather than one quantile computation per minute.
"""

from __future__ import annotations

import math
import threading
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
    "HOUR_S",
    "BucketSeries",
    "HourCache",
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
HOUR_S = 3600
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


def _add(entry: list, count: int, errors: int, histogram: Mapping[str, int]) -> None:
    entry[0] += count
    entry[1] += errors
    merge_into(entry[2], histogram)


def model_totals(
    connection: sa.Connection,
    *,
    start_s: int,
    end_s: int,
    model: str | None = None,
    hours: HourCache | None = None,
) -> list[ModelTotals]:
    """Every model (or only `model`) with rollups in ``[start_s, end_s)``, by name, with
    its percentiles; the whole hours inside the range read from `hours` when given."""
    query = (
        sa.select(_ROLLUPS.c.model, _ROLLUPS.c.count, _ROLLUPS.c.errors, _HISTOGRAM)
        .where(_ROLLUPS.c.minute_start_s >= start_s, _ROLLUPS.c.minute_start_s < end_s)
        .order_by(_ROLLUPS.c.model)
    )
    if model is not None:
        query = query.where(_ROLLUPS.c.model == model)
    merged: dict[str, list] = {}
    if hours is not None:
        first_hour = -(-start_s // HOUR_S) * HOUR_S
        last_hour = end_s // HOUR_S * HOUR_S
        if last_hour - first_hour >= 2 * HOUR_S:  # whole hours from the cache, edges from SQL
            cached = hours.hours(connection, start_s=first_hour, end_s=last_hour, model=model)
            for (name, _version, _hour), (count, errors, histogram) in sorted(cached.items()):
                _add(merged.setdefault(name, [0, 0, {}]), count, errors, histogram)
            minute = _ROLLUPS.c.minute_start_s
            query = query.where(sa.or_(minute < first_hour, minute >= last_hour))
    for row in connection.execute(query):
        _add(
            merged.setdefault(row.model, [0, 0, {}]), row.count, row.errors, _decoded(row.histogram)
        )
    merged = dict(sorted(merged.items()))
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
    hours: HourCache | None = None,
) -> tuple[BucketSeries, dict[str, BucketSeries]]:
    """The model's series over ``[start_s, end_s)`` in buckets of ``step_s`` (a multiple of
    a minute): versions merged, and per version (``versions`` to keep only some). With
    `hours`, hour-long buckets on hour boundaries come from the cache."""
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
    if hours is not None and step_s % HOUR_S == 0 and start_s % HOUR_S == 0:
        last_hour = end_s // HOUR_S * HOUR_S
        cached = hours.hours(connection, start_s=start_s, end_s=last_hour, model=model)
        for (_model, version, hour), (count, errors, histogram) in sorted(cached.items()):
            if versions is not None and version not in versions:
                continue
            index = (hour - start_s) // step_s
            for cells in (total, by_version.setdefault(version, {})):
                _add(cells.setdefault(index, [0, 0, {}]), count, errors, histogram)
        query = query.where(_ROLLUPS.c.minute_start_s >= last_hour)
    for row in connection.execute(query):
        index = (row.minute_start_s - start_s) // step_s
        histogram = _decoded(row.histogram)
        for cells in (total, by_version.setdefault(row.version, {})):
            _add(cells.setdefault(index, [0, 0, {}]), row.count, row.errors, histogram)
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


HourKey = tuple[str, str, int]
"""(model, version, hour start in Unix seconds)."""


class HourCache:
    """Each hour's rollups merged once: (calls, errors, histogram) per model, version, hour.

    A week's chart or overview otherwise decodes and merges ~10,000 minute histograms per
    model and version on every load. The cache is exact, not a time-to-live guess: every
    read first asks SQL for each hour's summed count (an index range scan that reads no
    histogram) and re-merges only the hours whose count changed, that is the current hour,
    an hour that received late events, or one that lost rollups. Ingest only ever adds to a
    minute's count, so an unchanged count is an unchanged hour. Safe to share between the
    threads of one server; at most `max_entries` hours are kept (the oldest go first).
    """

    def __init__(self, *, max_entries: int = 100_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max = max_entries
        self._entries: dict[HourKey, tuple[int, int, dict[str, int]]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def hours(
        self, connection: sa.Connection, *, start_s: int, end_s: int, model: str | None = None
    ) -> dict[HourKey, tuple[int, int, dict[str, int]]]:
        """Every (model, version, hour) with calls in ``[start_s, end_s)`` (whole hours)."""
        if start_s % HOUR_S or end_s % HOUR_S:
            raise ValueError("the range must start and end on whole hours")
        minute = _ROLLUPS.c.minute_start_s
        hour = (minute // HOUR_S * HOUR_S).label("hour")
        conditions = [minute >= start_s, minute < end_s]
        if model is not None:
            conditions.append(_ROLLUPS.c.model == model)
        counts = {
            (row.model, row.version, int(row.hour)): int(row.count)
            for row in connection.execute(
                sa.select(
                    _ROLLUPS.c.model,
                    _ROLLUPS.c.version,
                    hour,
                    sa.func.sum(_ROLLUPS.c.count).label("count"),
                )
                .where(*conditions)
                .group_by(_ROLLUPS.c.model, _ROLLUPS.c.version, hour)
            )
        }
        with self._lock:
            known = {key: self._entries.get(key) for key in counts}
        stale = {key for key, entry in known.items() if entry is None or entry[0] != counts[key]}
        if stale:
            fresh: dict[HourKey, list] = {key: [0, 0, {}] for key in stale}
            query = sa.select(
                _ROLLUPS.c.model,
                _ROLLUPS.c.version,
                minute,
                _ROLLUPS.c.count,
                _ROLLUPS.c.errors,
                _HISTOGRAM,
            ).where(
                *conditions[2:],
                minute >= min(h for _, _, h in stale),
                minute < max(h for _, _, h in stale) + HOUR_S,
            )
            for row in connection.execute(query):
                key = (row.model, row.version, row.minute_start_s // HOUR_S * HOUR_S)
                if key in fresh:
                    _add(fresh[key], row.count, row.errors, _decoded(row.histogram))
            with self._lock:
                for key, (count, errors, histogram) in fresh.items():
                    known[key] = self._entries[key] = (count, errors, histogram)
                excess = len(self._entries) - self._max
                if excess > 0:
                    for key in sorted(self._entries, key=lambda k: k[2])[:excess]:
                        del self._entries[key]
        return {key: entry for key, entry in known.items() if entry is not None}
