"""Reading dead letters: the input ingest refused, with its reason and raw bytes."""

from __future__ import annotations

import sqlalchemy as sa

from .tables import DeadLetter

_DEAD_LETTERS = DeadLetter.__table__


def recent_dead_letters(
    connection: sa.Connection, *, limit: int, before_id: int | None = None
) -> list[sa.Row]:
    """The newest `limit` dead letters (older than `before_id` when given), newest first."""
    query = sa.select(_DEAD_LETTERS).order_by(_DEAD_LETTERS.c.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(_DEAD_LETTERS.c.id < before_id)
    return list(connection.execute(query))
