"""Reads for the model page's version comparison and label panels.

Per-version figures come from the rollups (each version's histograms over the range merged,
whole hours from the hour rows), so comparing versions over a week reads about 170 rows a
version. The label reads join labels to predictions by (model, prediction id), as
`label_join` does: label delays are grouped into buckets in SQL, one row per bucket;
labeled predictions come back one row per label version, bounded by `limit`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from .dashboard_queries import _decoded, _range_rows
from .sketch import merge_into
from .tables import Event, Label

__all__ = [
    "LabelDelays",
    "LabeledPrediction",
    "VersionRange",
    "label_delays",
    "labeled_predictions",
    "version_ranges",
]

_EVENTS = Event.__table__
_LABELS = Label.__table__
_SAME_PREDICTION = sa.and_(
    _LABELS.c.model == _EVENTS.c.model, _LABELS.c.prediction_id == _EVENTS.c.prediction_id
)
"""A label and a prediction joined: the key of the label join, (model, prediction id)."""


@dataclass(slots=True)
class VersionRange:
    """One version over a range: calls, errors and its latency histogram, merged."""

    count: int = 0
    errors: int = 0
    histogram: dict[str, int] = field(default_factory=dict)


def version_ranges(
    connection: sa.Connection, model: str, *, start_s: int, end_s: int
) -> dict[str, VersionRange]:
    """version → its calls, errors and merged histogram over ``[start_s, end_s)``; only
    versions with calls in the range."""
    found: dict[str, VersionRange] = {}
    for row in _range_rows(connection, start_s=start_s, end_s=end_s, model=model):
        entry = found.setdefault(row.version, VersionRange())
        entry.count += row.count
        entry.errors += row.errors
        merge_into(entry.histogram, _decoded(row.histogram))
    return {version: entry for version, entry in sorted(found.items()) if entry.count}


@dataclass(frozen=True, slots=True)
class LabelDelays:
    """Labels of a range by delay bucket; `waiting`: labels with no prediction stored."""

    counts: list[int]
    waiting: int

    @property
    def joined(self) -> int:
        return sum(self.counts)


def label_delays(
    connection: sa.Connection,
    model: str,
    *,
    start_ns: int,
    end_ns: int,
    edges_ns: Sequence[int],
) -> LabelDelays:
    """Labels of `model` whose label time is in ``[start_ns, end_ns)``, counted by their
    delay (label time − the prediction's start): bucket ``i`` holds delays below
    ``edges_ns[i]`` and at or above the edge before it; the last, those past every edge.

    A prediction id stored twice counts its label once, from the earliest prediction."""
    # Grouped, so the delay is computed once per label rather than once per CASE branch.
    delays = (
        sa.select((_LABELS.c.time_ns - sa.func.min(_EVENTS.c.start_time_ns)).label("delay_ns"))
        .select_from(_LABELS.outerjoin(_EVENTS, _SAME_PREDICTION))
        .where(
            _LABELS.c.model == model,
            _LABELS.c.time_ns >= start_ns,
            _LABELS.c.time_ns < end_ns,
        )
        .group_by(_LABELS.c.event_id, _LABELS.c.time_ns)
        .subquery("delays")
    )
    delay = delays.c.delay_ns
    bucket = sa.case(
        (delay.is_(None), -1),
        *((delay < edge, index) for index, edge in enumerate(edges_ns)),
        else_=len(edges_ns),
    ).label("bucket")
    query = sa.select(bucket, sa.func.count()).select_from(delays).group_by(bucket)
    counts = [0] * (len(edges_ns) + 1)
    waiting = 0
    for index, count in connection.execute(query):
        if index < 0:
            waiting = int(count)
        else:
            counts[int(index)] = int(count)
    return LabelDelays(counts, waiting)


@dataclass(frozen=True, slots=True)
class LabeledPrediction:
    """A prediction started in the range and the label in force for it (the latest)."""

    start_time_ns: int
    version: str
    outputs: Any
    label: Any


def labeled_predictions(
    connection: sa.Connection,
    model: str,
    *,
    versions: Sequence[str],
    start_ns: int,
    end_ns: int,
    limit: int,
) -> tuple[list[LabeledPrediction], bool]:
    """Predictions of `model`'s `versions` started in ``[start_ns, end_ns)`` that have a
    label, each with its latest label version (by label time, then receipt, then id, as
    `labeled_rows` chooses), by start time; and whether `limit` label rows cut the read
    short. Naming the versions (those the rollups show in the range) lets the events'
    (model, version, start) index read only the range, not every event of the model."""
    if not versions:
        return [], False
    query = (
        sa.select(
            _EVENTS.c.event_id,
            _EVENTS.c.start_time_ns,
            _EVENTS.c.version,
            _EVENTS.c.outputs,
            _LABELS.c.label,
            _LABELS.c.time_ns,
            _LABELS.c.received_at_ns,
            _LABELS.c.event_id.label("label_event_id"),
        )
        .select_from(_EVENTS.join(_LABELS, _SAME_PREDICTION))
        .where(
            _EVENTS.c.model == model,
            _EVENTS.c.version.in_(list(versions)),
            _EVENTS.c.start_time_ns >= start_ns,
            _EVENTS.c.start_time_ns < end_ns,
        )
        .order_by(_EVENTS.c.start_time_ns, _EVENTS.c.event_id)
        .limit(limit + 1)
    )
    rows = connection.execute(query).all()
    truncated = len(rows) > limit
    latest: dict[str, sa.Row] = {}
    for row in rows[:limit]:
        held = latest.get(row.event_id)
        rank = (row.time_ns, row.received_at_ns, row.label_event_id)
        if held is None or rank > (held.time_ns, held.received_at_ns, held.label_event_id):
            latest[row.event_id] = row
    found = [
        LabeledPrediction(row.start_time_ns, row.version, row.outputs, row.label)
        for row in latest.values()
    ]
    found.sort(key=lambda p: p.start_time_ns)
    return found, truncated
