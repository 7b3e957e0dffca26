"""Store reads the analyzer needs: active models and versions, window events, labels."""

from __future__ import annotations

from typing import Any

import polars as pl
import sqlalchemy as sa

from inferloop.store.tables import Event, Label, MinuteRollup

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


def active_models(connection: sa.Connection, since_s: int) -> list[str]:
    query = sa.select(_ROLLUPS.c.model).where(_ROLLUPS.c.minute_start_s >= since_s).distinct()
    return sorted(connection.scalars(query))


def active_versions(connection: sa.Connection, model: str, since_s: int) -> list[str]:
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
    query = (
        sa.select(*(_EVENTS.c[name] for name in EVENT_COLUMNS))
        .where(_EVENTS.c.model == model, _EVENTS.c.version == version)
        .order_by(_EVENTS.c.start_time_ns)
        .limit(count)
    )
    return [dict(row._mapping) for row in connection.execute(query)]


def calls_frame(events: list[dict[str, Any]]) -> pl.DataFrame:
    """The per-call columns performance checks use."""
    return pl.DataFrame(
        {
            "start_time_ns": [e["start_time_ns"] for e in events],
            "latency_ns": [e["latency_ns"] for e in events],
            "device_time_ns": [e["device_time_ns"] for e in events],
            "status": [e["status"] for e in events],
        },
        schema={
            "start_time_ns": pl.Int64,
            "latency_ns": pl.Int64,
            "device_time_ns": pl.Int64,
            "status": pl.String,
        },
    )


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
