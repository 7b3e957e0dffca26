"""What the label join reads: predictions in a window, their label versions, and the
labels still waiting for a prediction.

The join is by (model, prediction id), the key of ``labeled_rows``; it is computed
when read, so a label stored before its prediction is joined as soon as the
prediction lands, and the result depends on what is stored, not on arrival order.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from .tables import Event, Label

_EVENTS = Event.__table__
_LABELS = Label.__table__


@dataclass(frozen=True, slots=True)
class LabelVersionRow:
    """One stored label version of one prediction (an event) in the window."""

    event_id: str
    version: str
    start_time_ns: int
    label_time_ns: int
    label_received_at_ns: int
    label_event_id: str


@dataclass(frozen=True, slots=True)
class WaitingLabels:
    """Predictions that have labels but are not (yet) in the store."""

    predictions: int
    """Distinct prediction ids labeled in the window with no prediction stored."""
    older_than_cutoff: int
    """Of those, how many got their first label before the cutoff (past the join window)."""


def _in_window(model: str, start_ns: int, end_ns: int) -> list[sa.ColumnElement[bool]]:
    return [
        _EVENTS.c.model == model,
        _EVENTS.c.start_time_ns >= start_ns,
        _EVENTS.c.start_time_ns < end_ns,
    ]


def prediction_counts(
    connection: sa.Connection, *, model: str, start_ns: int, end_ns: int
) -> dict[str, int]:
    """Predictions of ``model`` started in [start_ns, end_ns), per version."""
    query = (
        sa.select(_EVENTS.c.version, sa.func.count())
        .where(*_in_window(model, start_ns, end_ns))
        .group_by(_EVENTS.c.version)
    )
    return {version: int(count) for version, count in connection.execute(query)}


def label_versions(
    connection: sa.Connection, *, model: str, start_ns: int, end_ns: int
) -> list[LabelVersionRow]:
    """Every stored label version of every prediction of ``model`` started in the window.

    One row per (prediction, version): corrections are few, so this is about one row per
    labeled prediction. Sorted, so the caller sees the same rows in the same order on
    both back ends.
    """
    query = (
        sa.select(
            _EVENTS.c.event_id,
            _EVENTS.c.version,
            _EVENTS.c.start_time_ns,
            _LABELS.c.time_ns,
            _LABELS.c.received_at_ns,
            _LABELS.c.event_id,
        )
        .select_from(
            _EVENTS.join(
                _LABELS,
                sa.and_(
                    _LABELS.c.model == _EVENTS.c.model,
                    _LABELS.c.prediction_id == _EVENTS.c.prediction_id,
                ),
            )
        )
        .where(*_in_window(model, start_ns, end_ns))
    )
    rows = [LabelVersionRow(*row) for row in connection.execute(query)]
    rows.sort(key=lambda r: (r.event_id, r.label_time_ns, r.label_received_at_ns, r.label_event_id))
    return rows


def waiting_labels(
    connection: sa.Connection, *, model: str, start_ns: int, end_ns: int, cutoff_ns: int
) -> WaitingLabels:
    """Prediction ids of ``model`` labeled in [start_ns, end_ns) (by label time) that no
    stored prediction has; ``cutoff_ns`` splits off those waiting since before it."""
    has_prediction = (
        sa.select(sa.literal(1))
        .where(
            _EVENTS.c.model == _LABELS.c.model, _EVENTS.c.prediction_id == _LABELS.c.prediction_id
        )
        .exists()
    )
    waiting = (
        sa.select(_LABELS.c.prediction_id, sa.func.min(_LABELS.c.time_ns).label("first_ns"))
        .where(
            _LABELS.c.model == model,
            _LABELS.c.time_ns >= start_ns,
            _LABELS.c.time_ns < end_ns,
            ~has_prediction,
        )
        .group_by(_LABELS.c.prediction_id)
        .subquery("waiting")
    )
    query = sa.select(
        sa.func.count(),
        sa.func.coalesce(sa.func.sum(sa.case((waiting.c.first_ns < cutoff_ns, 1), else_=0)), 0),
    ).select_from(waiting)
    predictions, older = connection.execute(query).one()
    return WaitingLabels(predictions=int(predictions), older_than_cutoff=int(older))
