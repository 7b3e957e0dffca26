"""The figures derived from a batch's new events: pure, vectorised maths, no SQL.

Per (model, version, minute) rollups with a latency sketch and GPU time, the same
per hour (the batch's minutes merged), runs of contiguous
sequence numbers per (emitter, model), and SDK drop totals per minute. The
columns come out of the rows in C (``map(itemgetter(...))``), then numpy groups
them with integer keys (one sort each), so the cost per event stays well under a
microsecond. ``upserts.py`` merges the results into the store.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter

import numpy as np

from inferloop.grains import MINUTE_NS, MINUTE_S
from inferloop.store.sketch import bucket_indexes, merge_into

from .contract import EVENT_COLUMNS, UNSEQUENCED_EMITTER_ID, LabelEvent
from .validation import DropReport

_COLUMN = {name: index for index, name in enumerate(EVENT_COLUMNS)}
_BUCKET_BITS = 16
"""Sketch bucket indexes of int64 nanoseconds stay below 2**13 (ln(2**63) / ln(gamma))."""
_MINUTE_BITS = 40
"""Bits of a (series, minute) group key holding the minute number (Unix minutes < 2**40)."""

HOUR_S = 3600
RollupKey = tuple[str, str, int]
"""(model, version, minute_start_s or hour_start_s)."""
DeliveryRun = tuple[str, str, int, int, int, int]
"""(emitter_id, model, first seq, last seq, first time_ns, last time_ns)."""
DropKey = tuple[str, int, str]
"""(model, minute_start_s, reason)."""


@dataclass(slots=True)
class RollupAggregate:
    """What a batch adds to one rollup row (a minute or an hour of one model/version)."""

    count: int
    errors: int
    latency_sum_ns: int
    latency_max_ns: int
    histogram: dict[str, int]
    device_count: int = 0
    device_time_sum_ns: int = 0
    device_time_max_ns: int = 0


@dataclass(frozen=True, slots=True)
class DerivedFigures:
    """Rollup aggregates, delivery runs and drop totals of a batch's events.

    The collector computes them while the previous batch is being written (the
    database waits on nothing then); ``write_events`` uses them only when every
    event of the batch turns out to be new, and otherwise recomputes them from
    the rows actually inserted, so a redelivery still adds nothing.
    """

    aggregates: dict[RollupKey, RollupAggregate]
    hours: dict[RollupKey, RollupAggregate]
    delivery_runs: list[DeliveryRun]
    drop_totals: dict[DropKey, int]


class _RowColumns:
    """The columns the derived figures need, taken from ``events`` rows."""

    __slots__ = (
        "emitters",
        "models",
        "versions",
        "seqs",
        "start_ns",
        "latency_ns",
        "failed",
        "device_ns",
    )

    def __init__(self, rows: Sequence[tuple]) -> None:
        n = len(rows)

        def column(name: str) -> Iterator:
            return map(itemgetter(_COLUMN[name]), rows)

        self.emitters: list[str] = list(column("emitter_id"))
        self.models: list[str] = list(column("model"))
        self.versions: list[str] = list(column("version"))
        self.seqs = np.fromiter(column("seq"), np.int64, n)
        self.start_ns = np.fromiter(column("start_time_ns"), np.int64, n)
        self.latency_ns = np.fromiter(column("latency_ns"), np.int64, n)
        self.failed = np.fromiter(map("error".__eq__, column("status")), np.bool_, n)
        device = list(column("device_time_ns"))
        # None (not measured) becomes NaN; None everywhere, the common CPU case, costs a count.
        self.device_ns = None if device.count(None) == n else np.array(device, np.float64)


def _group_index(first: list, second: list) -> tuple[list, np.ndarray]:
    """The distinct (first, second) pairs (first-seen order) and each row's position among
    them. Most batches hold one model version of one emitter: two C-level counts find
    that, without building a pair per row."""
    n = len(first)
    if first.count(first[0]) == n and second.count(second[0]) == n:
        return [(first[0], second[0])], np.zeros(n, np.int64)
    keys = list(zip(first, second, strict=True))
    distinct = list(dict.fromkeys(keys))
    position = {key: i for i, key in enumerate(distinct)}
    return distinct, np.fromiter(map(position.__getitem__, keys), np.int64, len(keys))


def _minute_aggregates(columns: _RowColumns) -> dict[RollupKey, RollupAggregate]:
    """Per (model, version, minute): count, errors, latency sum/max, histogram, GPU time."""
    latency = columns.latency_ns
    minutes = columns.start_ns // MINUTE_NS
    series, series_index = _group_index(columns.models, columns.versions)
    # One group per (series, minute).
    group_keys, group = np.unique((series_index << _MINUTE_BITS) + minutes, return_inverse=True)
    group = group.reshape(-1)
    groups = group_keys.size
    counts = np.bincount(group, minlength=groups)
    errors = np.bincount(group, weights=columns.failed, minlength=groups)
    sums = np.bincount(group, weights=latency.astype(np.float64), minlength=groups)
    order = np.argsort(group, kind="stable")
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    maxima = np.maximum.reduceat(latency[order], starts)
    pairs, pair_counts = np.unique(
        (group << _BUCKET_BITS) | bucket_indexes(latency), return_counts=True
    )
    histograms: list[dict[str, int]] = [{} for _ in range(groups)]
    for pair, count in zip(pairs.tolist(), pair_counts.tolist(), strict=True):
        histograms[pair >> _BUCKET_BITS][str(pair & ((1 << _BUCKET_BITS) - 1))] = count
    device_counts = device_sums = device_maxima = np.zeros(groups, np.int64)
    if columns.device_ns is not None:
        measured = ~np.isnan(columns.device_ns)
        device = np.where(measured, columns.device_ns, 0.0)
        device_counts = np.bincount(group, weights=measured, minlength=groups)
        device_sums = np.bincount(group, weights=device, minlength=groups)
        device_maxima = np.maximum.reduceat(device[order], starts)
    aggregates = {}
    for g, key in enumerate(group_keys.tolist()):
        model, version = series[key >> _MINUTE_BITS]
        minute_start_s = (key & ((1 << _MINUTE_BITS) - 1)) * MINUTE_S
        aggregates[(model, version, minute_start_s)] = RollupAggregate(
            count=int(counts[g]),
            errors=int(errors[g]),
            latency_sum_ns=int(sums[g]),
            latency_max_ns=int(maxima[g]),
            histogram=histograms[g],
            device_count=int(device_counts[g]),
            device_time_sum_ns=int(device_sums[g]),
            device_time_max_ns=int(device_maxima[g]),
        )
    return aggregates


def hour_aggregates(
    minutes: dict[RollupKey, RollupAggregate],
) -> dict[RollupKey, RollupAggregate]:
    """The minute aggregates merged per (model, version, hour): what the hour rows add."""
    hours: dict[RollupKey, RollupAggregate] = {}
    for (model, version, minute_start_s), add in minutes.items():
        key = (model, version, minute_start_s // HOUR_S * HOUR_S)
        hour = hours.get(key)
        if hour is None:
            hours[key] = RollupAggregate(
                add.count,
                add.errors,
                add.latency_sum_ns,
                add.latency_max_ns,
                dict(add.histogram),
                add.device_count,
                add.device_time_sum_ns,
                add.device_time_max_ns,
            )
            continue
        hour.count += add.count
        hour.errors += add.errors
        hour.latency_sum_ns += add.latency_sum_ns
        hour.latency_max_ns = max(hour.latency_max_ns, add.latency_max_ns)
        merge_into(hour.histogram, add.histogram)
        hour.device_count += add.device_count
        hour.device_time_sum_ns += add.device_time_sum_ns
        hour.device_time_max_ns = max(hour.device_time_max_ns, add.device_time_max_ns)
    return hours


def _delivery_runs(columns: _RowColumns | None, labels: Sequence[LabelEvent]) -> list[DeliveryRun]:
    """Runs of contiguous sequence numbers per (emitter, model), with their first/last times.

    Vectorised like the rollups: sort by (emitter/model, seq) and cut where the
    group changes or the sequence jumps. Label records from other systems carry no
    sequence (`UNSEQUENCED_EMITTER_ID`) and count in no run.
    """
    labels = [lab for lab in labels if lab.emitter_id != UNSEQUENCED_EMITTER_ID]
    if columns is None and not labels:
        return []
    emitters = [lab.emitter_id for lab in labels]
    models = [lab.model for lab in labels]
    seqs = np.array([lab.seq for lab in labels], np.int64)
    times = np.array([lab.time_ns for lab in labels], np.int64)
    if columns is not None:
        emitters[:0] = columns.emitters
        models[:0] = columns.models
        seqs = np.concatenate((columns.seqs, seqs))
        times = np.concatenate((columns.start_ns, times))
    n = len(emitters)
    groups, group = _group_index(emitters, models)
    order = np.lexsort((seqs, group))
    group, seqs, times = group[order], seqs[order], times[order]
    cuts = np.flatnonzero((np.diff(group) != 0) | (np.diff(seqs) != 1)) + 1
    starts = np.concatenate(([0], cuts))
    ends = np.concatenate((cuts, [n])) - 1
    firsts = np.minimum.reduceat(times, starts)
    lasts = np.maximum.reduceat(times, starts)
    return [
        (*groups[g], first_seq, last_seq, first, last)
        for g, first_seq, last_seq, first, last in zip(
            group[starts].tolist(),
            seqs[starts].tolist(),
            seqs[ends].tolist(),
            firsts.tolist(),
            lasts.tolist(),
            strict=True,
        )
    ]


def _drop_totals(reports: Iterable[DropReport]) -> dict[DropKey, int]:
    """The SDK's drop reports summed per (model, minute, reason); reasons cut to the column."""
    totals: dict[DropKey, int] = defaultdict(int)
    for report in reports:
        for reason, count in report.counts.items():
            if count:
                totals[(report.model, report.minute_start_s, reason[:100])] += count
    return dict(totals)


def derive_figures(
    rows: Sequence[tuple], labels: Sequence[LabelEvent], drops: Iterable[DropReport] = ()
) -> DerivedFigures:
    """Rollups, delivery runs and drop totals of ``rows`` (``events`` rows), ``labels`` and
    ``drops``, all assumed new."""
    columns = _RowColumns(rows) if rows else None
    minutes = _minute_aggregates(columns) if columns is not None else {}
    return DerivedFigures(
        aggregates=minutes,
        hours=hour_aggregates(minutes),
        delivery_runs=_delivery_runs(columns, labels) if columns is not None or labels else [],
        drop_totals=_drop_totals(drops),
    )
