"""What reached the store, counted three ways so that a double shows up in one of them."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

__all__ = ["Tally", "tally"]


@dataclass(frozen=True)
class Tally:
    rows: int
    """Rows in `events` for the model (event_id is its primary key)."""
    distinct_seq: int
    """Distinct (emitter_id, seq): an event stored twice under two ids would show here."""
    rolled_up: int
    """Events counted by the minute rollups: a batch applied twice would count twice."""

    @property
    def duplicates(self) -> int:
        return max(self.rows - self.distinct_seq, self.rolled_up - self.distinct_seq, 0)


def tally(engine: sa.Engine, model: str) -> Tally:
    with engine.connect() as connection:
        rows, distinct = connection.execute(
            sa.text(
                "SELECT count(*), count(DISTINCT emitter_id || ':' || CAST(seq AS VARCHAR(20)))"
                " FROM events WHERE model = :model"
            ),
            {"model": model},
        ).one()
        rolled_up = connection.scalar(
            sa.text("SELECT coalesce(sum(count), 0) FROM minute_rollups WHERE model = :model"),
            {"model": model},
        )
    return Tally(int(rows), int(distinct), int(rolled_up))
