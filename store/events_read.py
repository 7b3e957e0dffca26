"""Reads of raw events and labels for analysis: active models and versions, a window's
events, a version's first events, and predictions joined to their labels."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from .tables import Event, Label, MinuteRollup

_EVENTS = Event.__table__
_LABELS = Label.__table__
_ROLLUPS = MinuteRollup.__table__

EVENT_COLUMNS = (
    "start_time_ns",
    "latency_ns",
    "device_time_ns",
    "status",
    "prediction_id",
    "inputs",
    "outputs",
)
"""The columns `window_events` and `first_events` return."""


def active_models(connection: sa.Connection, since_s: int) -> list[str]:
    """Models with a rollup minute at or after `since_s` (Unix seconds), sorted."""
    query = sa.select(_ROLLUPS.c.model).where(_ROLLUPS.c.minute_start_s >= since_s).distinct()
    return sorted(connection.scalars(query))


def active_versions(connection: sa.Connection, model: str, since_s: int) -> list[str]:
    """Versions of `model` with a rollup minute at or after `since_s`, sorted."""
    query = (
        sa.select(_ROLLUPS.c.version)
        .where(_ROLLUPS.c.model == model, _ROLLUPS.c.minute_start_s >= since_s)
        .distinct()
    )
    return sorted(connection.scalars(query))


def window_events(
    connection: sa.Connection, model: str, version: str, start_ns: int, end_ns: int, limit: int
) -> list[dict[str, Any]]:
    """Events of the window, newest first when over `limit` (the newest matter most)."""
    query = (
        sa.select(*(_EVENTS.c[name] for name in EVENT_COLUMNS))
        .where(
            _EVENTS.c.model == model,
            _EVENTS.c.version == version,
            _EVENTS.c.start_time_ns >= start_ns,
            _EVENTS.c.start_time_ns < end_ns,
        )
        .order_by(_EVENTS.c.start_time_ns.desc())
        .limit(limit)
    )
    return [dict(row._mapping) for row in connection.execute(query)]


def first_events(
    connection: sa.Connection, model: str, version: str, count: int
) -> list[dict[str, Any]]:
    """The version's first `count` events, oldest first."""
    query = (
        sa.select(*(_EVENTS.c[name] for name in EVENT_COLUMNS))
        .where(_EVENTS.c.model == model, _EVENTS.c.version == version)
        .order_by(_EVENTS.c.start_time_ns)
        .limit(count)
    )
    return [dict(row._mapping) for row in connection.execute(query)]


def labelled_outputs(
    connection: sa.Connection, model: str, version: str, start_ns: int, end_ns: int, limit: int
) -> list[tuple[Any, Any]]:
    """(outputs payload, label) of the window's predictions that have a label."""
    query = (
        sa.select(_EVENTS.c.outputs, _LABELS.c.label)
        .join(
            _LABELS,
            sa.and_(
                _LABELS.c.prediction_id == _EVENTS.c.prediction_id,
                _LABELS.c.model == _EVENTS.c.model,
            ),
        )
        .where(
            _EVENTS.c.model == model,
            _EVENTS.c.version == version,
            _EVENTS.c.start_time_ns >= start_ns,
            _EVENTS.c.start_time_ns < end_ns,
        )
        .limit(limit)
    )
    return [(row.outputs, row.label) for row in connection.execute(query)]
