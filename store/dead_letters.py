"""Reading dead letters: the input ingest refused, with its reason and raw bytes."""

from __future__ import annotations

import sqlalchemy as sa

from .tables import DeadLetter

_DEAD_LETTERS = DeadLetter.__table__


def recent_dead_letters(connection: sa.Connection, *, limit: int) -> list[sa.Row]:
    """The newest `limit` dead letters, newest first."""
    query = sa.select(_DEAD_LETTERS).order_by(_DEAD_LETTERS.c.id.desc()).limit(limit)
    return list(connection.execute(query))
