"""Predictions joined to the label in force as of a cutoff: the rows of a labeled snapshot.

A correction is a later label event for the same (model, prediction id); every version
is kept. The version in force is the latest by ``time_ns`` (ties: ``received_at_ns``,
then ``event_id``, so the choice is total and the same on both back ends), counting only
versions the store had received by the cutoff (``received_at_ns <= label_as_of_ns``).
The cutoff applies to predictions too: an event received after it is not part of the
view, so the same cutoff reads the same rows however much arrives later.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from .tables import Event, Label

_EVENTS = Event.__table__
_LABELS = Label.__table__

JoinPolicy = Literal["latest", "earliest"]
"""Which label version is in force: the latest (corrections win) or the first recorded."""

LABELED_ROW_COLUMNS = (
    "prediction_id",
    "event_id",
    "version",
    "start_time_ns",
    "status",
    "inputs",
    "outputs",
    "label",
    "label_time_ns",
    "label_received_at_ns",
    "label_event_id",
    "label_versions",
)
"""The keys of each row `labeled_rows` returns (the label ones are None when unlabeled)."""


@dataclass(frozen=True, slots=True)
class LabeledRowCounts:
    """Predictions in the view and how many of them have a label in force."""

    predictions: int
    labeled: int


def _event_filter(
    model: str, versions: Sequence[str] | None, start_ns: int, end_ns: int, as_of_ns: int
) -> list[sa.ColumnElement[bool]]:
    clauses = [
        _EVENTS.c.model == model,
        _EVENTS.c.start_time_ns >= start_ns,
        _EVENTS.c.start_time_ns < end_ns,
        _EVENTS.c.received_at_ns <= as_of_ns,
    ]
    if versions is not None:
        clauses.append(_EVENTS.c.version.in_(list(versions)))
    return clauses


def _in_force(
    model: str,
    versions: Sequence[str] | None,
    start_ns: int,
    end_ns: int,
    as_of_ns: int,
    policy: JoinPolicy,
) -> sa.Subquery:
    """Each in-range prediction's label versions, ranked so that rank 1 is in force.

    Ranking per event (not per prediction id over the whole labels table) limits the
    window to the labels of the predictions asked for; the prediction-id index finds them.
    """
    if policy == "latest":
        order = (
            _LABELS.c.time_ns.desc(),
            _LABELS.c.received_at_ns.desc(),
            _LABELS.c.event_id.desc(),
        )
    elif policy == "earliest":
        order = (_LABELS.c.time_ns.asc(), _LABELS.c.received_at_ns.asc(), _LABELS.c.event_id.asc())
    else:
        raise ValueError(f"unknown join policy {policy!r}; expected 'latest' or 'earliest'")
    return (
        sa.select(
            _EVENTS.c.event_id.label("for_event_id"),
            _LABELS.c.label,
            _LABELS.c.time_ns.label("label_time_ns"),
            _LABELS.c.received_at_ns.label("label_received_at_ns"),
            _LABELS.c.event_id.label("label_event_id"),
            sa.func.row_number()
            .over(partition_by=_EVENTS.c.event_id, order_by=order)
            .label("rank"),
            sa.func.count().over(partition_by=_EVENTS.c.event_id).label("label_versions"),
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
        .where(
            *_event_filter(model, versions, start_ns, end_ns, as_of_ns),
            _LABELS.c.received_at_ns <= as_of_ns,
        )
        .subquery("in_force")
    )


def labeled_rows(
    connection: sa.Connection,
    *,
    model: str,
    versions: Sequence[str] | None = None,
    start_ns: int,
    end_ns: int,
    label_as_of_ns: int,
    policy: JoinPolicy = "latest",
    labeled_only: bool = True,
) -> list[dict[str, Any]]:
    """Predictions of `model` started in [start_ns, end_ns) with their label in force.

    `versions` None means every version. Ordered by (prediction id, event id); the
    database's collation decides string order, so callers hashing rows sort them again.
    With `labeled_only` False, unlabeled predictions come with None label columns.
    """
    ranked = _in_force(model, versions, start_ns, end_ns, label_as_of_ns, policy)
    on = sa.and_(ranked.c.for_event_id == _EVENTS.c.event_id, ranked.c.rank == 1)
    joined = _EVENTS.join(ranked, on) if labeled_only else _EVENTS.outerjoin(ranked, on)
    query = (
        sa.select(
            _EVENTS.c.prediction_id,
            _EVENTS.c.event_id,
            _EVENTS.c.version,
            _EVENTS.c.start_time_ns,
            _EVENTS.c.status,
            _EVENTS.c.inputs,
            _EVENTS.c.outputs,
            ranked.c.label,
            ranked.c.label_time_ns,
            ranked.c.label_received_at_ns,
            ranked.c.label_event_id,
            ranked.c.label_versions,
        )
        .select_from(joined)
        .where(*_event_filter(model, versions, start_ns, end_ns, label_as_of_ns))
        .order_by(_EVENTS.c.prediction_id, _EVENTS.c.event_id)
    )
    return [dict(row._mapping) for row in connection.execute(query)]


def labeled_row_counts(
    connection: sa.Connection,
    *,
    model: str,
    versions: Sequence[str] | None = None,
    start_ns: int,
    end_ns: int,
    label_as_of_ns: int,
) -> LabeledRowCounts:
    """How many predictions the view holds and how many have a label in force.

    The policy does not matter here: a prediction has a version in force under any
    policy exactly when it has at least one version received by the cutoff.
    """
    has_label = (
        sa.select(sa.literal(1))
        .where(
            _LABELS.c.model == _EVENTS.c.model,
            _LABELS.c.prediction_id == _EVENTS.c.prediction_id,
            _LABELS.c.received_at_ns <= label_as_of_ns,
        )
        .exists()
    )
    query = sa.select(
        sa.func.count(),
        sa.func.coalesce(sa.func.sum(sa.case((has_label, 1), else_=0)), 0),
    ).where(*_event_filter(model, versions, start_ns, end_ns, label_as_of_ns))
    predictions, labeled = connection.execute(query).one()
    return LabeledRowCounts(predictions=int(predictions), labeled=int(labeled))
