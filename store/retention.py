"""Retention: raw events and per-window drift cells age out; the per-minute rollups, the
hour tables (and labels) stay."""

from __future__ import annotations

import logging
import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from inferloop.periodic import PeriodicThread

from .drift_cells import HOUR_NS, DriftCell, DriftCellHour
from .tables import DeadLetter, Event, MinuteRollup

logger = logging.getLogger(__name__)

NS_PER_DAY = 86_400 * 1_000_000_000
_DELETE_CHUNK = 10_000


def prune_raw_events(engine: Engine, *, older_than_days: float, now_ns: int | None = None) -> int:
    """Delete events (and dead letters) older than the retention age; return events deleted.

    Prunes one model/version series at a time through the (model, version,
    start_time_ns) index, in chunks of one short transaction each, so ingest is
    never blocked long. Every stored event has a rollup row, so the rollups
    list every series.
    """
    cutoff = (now_ns if now_ns is not None else time.time_ns()) - int(older_than_days * NS_PER_DAY)
    events = Event.__table__
    rollups = MinuteRollup.__table__
    with engine.connect() as connection:
        series = connection.execute(
            sa.select(rollups.c.model, rollups.c.version)
            .where(rollups.c.minute_start_s < cutoff // 1_000_000_000)
            .distinct()
        ).all()
    deleted = 0
    for model, version in series:
        while True:
            oldest = (
                sa.select(events.c.event_id)
                .where(
                    events.c.model == model,
                    events.c.version == version,
                    events.c.start_time_ns < cutoff,
                )
                .limit(_DELETE_CHUNK)
                .scalar_subquery()
            )
            with engine.begin() as connection:
                count = connection.execute(
                    sa.delete(events).where(events.c.event_id.in_(oldest))
                ).rowcount
            deleted += count
            if count < _DELETE_CHUNK:
                break
    dead_letters = DeadLetter.__table__
    with engine.begin() as connection:
        connection.execute(sa.delete(dead_letters).where(dead_letters.c.received_at_ns < cutoff))
    return deleted


def prune_drift_cells(engine: Engine, *, older_than_days: float, now_ns: int | None = None) -> int:
    """Delete the drift cells of windows that ended before the retention age, whole hours
    only, so each hour kept in `drift_cell_hours` (the heatmap's long ranges) still counts
    exactly the cells it was computed from; return the cells deleted.

    Model by model through the (model, window_end_ns) primary key, in short chunks."""
    cutoff = (now_ns if now_ns is not None else time.time_ns()) - int(older_than_days * NS_PER_DAY)
    cutoff = cutoff // HOUR_NS * HOUR_NS
    cells = DriftCell.__table__
    hours = DriftCellHour.__table__
    with engine.connect() as connection:
        models = connection.execute(
            sa.select(hours.c.model).where(hours.c.hour_start_ns < cutoff).distinct()
        ).scalars()
        models = list(models)
    deleted = 0
    for model in models:
        while True:
            oldest = (
                sa.select(cells.c.window_end_ns)
                .where(cells.c.model == model, cells.c.window_end_ns < cutoff)
                .order_by(cells.c.window_end_ns)
                .offset(_DELETE_CHUNK - 1)
                .limit(1)
                .scalar_subquery()
            )
            with engine.begin() as connection:
                # Chunks end at a window boundary: every cell up to the chunk's last window.
                bound = connection.scalar(sa.select(oldest))
                upper = cutoff if bound is None else min(bound + 1, cutoff)
                count = connection.execute(
                    sa.delete(cells).where(cells.c.model == model, cells.c.window_end_ns < upper)
                ).rowcount
            deleted += count
            if bound is None or upper == cutoff:
                break
    return deleted


class RetentionWorker:
    """Background thread pruning raw events and drift cells periodically (a server
    ``background`` worker)."""

    def __init__(
        self, engine: Engine, *, older_than_days: float, interval_s: float = 3600.0
    ) -> None:
        self.engine = engine
        self.older_than_days = older_than_days
        self.interval_s = interval_s
        self._thread = PeriodicThread(
            "inferloop-retention", self._round, retry_s=interval_s, logger=logger
        )

    def _round(self) -> float:
        deleted = prune_raw_events(self.engine, older_than_days=self.older_than_days)
        cells = prune_drift_cells(self.engine, older_than_days=self.older_than_days)
        if deleted or cells:
            logger.info("retention pruned %d raw events and %d drift cells", deleted, cells)
        return self.interval_s

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._thread.stop(timeout=30)
