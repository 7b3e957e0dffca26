"""The alerting core's state and the silences, kept in SQL so any process can carry on.

The state is one JSON document (alerts, groups, the sent log) with a version; a
writer saves it only if nobody saved since it read (optimistic concurrency), in the
transaction that also queues the notifications that step produced. Two evaluators
therefore never both send for the same step: the loser's transaction rolls back.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from .alerting import AlertGroupState, AlertSilence
from .dialect import dialect_insert

_STATE = AlertGroupState.__table__
_SILENCES = AlertSilence.__table__
ENGINE_STATE_KEY = "engine"


def load_engine_state(connection: sa.Connection) -> tuple[dict[str, Any] | None, int]:
    """(state document or None when none was saved yet, its version)."""
    row = connection.execute(
        sa.select(_STATE.c.state, _STATE.c.updated_at_ns).where(_STATE.c.key == ENGINE_STATE_KEY)
    ).first()
    return (None, 0) if row is None else (row.state, row.updated_at_ns)


def save_engine_state(
    connection: sa.Connection,
    state: dict[str, Any],
    *,
    seen_version: int,
    now_ns: int,
    next_wakeup_ns: int | None,
) -> bool:
    """Save `state` if the stored version is still `seen_version`; False if another
    writer got there first (the caller's transaction must then roll back)."""
    version = max(now_ns, seen_version + 1)
    if seen_version == 0:
        inserted = connection.execute(
            dialect_insert(connection, _STATE)
            .values(
                key=ENGINE_STATE_KEY,
                state=state,
                next_wakeup_ns=next_wakeup_ns,
                updated_at_ns=version,
            )
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(_STATE.c.key)
        )
        return inserted.first() is not None  # rowcount is not reliable here on psycopg
    updated = connection.execute(
        sa.update(_STATE)
        .where(_STATE.c.key == ENGINE_STATE_KEY, _STATE.c.updated_at_ns == seen_version)
        .values(state=state, next_wakeup_ns=next_wakeup_ns, updated_at_ns=version)
    )
    return updated.rowcount == 1


def save_silence(connection: sa.Connection, silence: dict[str, Any], *, now_ns: int) -> None:
    """Insert or replace a silence (a `Silence.to_dict()`)."""
    values = {**silence, "created_at_ns": now_ns}
    statement = dialect_insert(connection, _SILENCES).values(values)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["id"],
            set_={
                "matchers": statement.excluded.matchers,
                "starts_at_ns": statement.excluded.starts_at_ns,
                "ends_at_ns": statement.excluded.ends_at_ns,
                "comment": statement.excluded.comment,
                "created_by": statement.excluded.created_by,
            },
        )
    )


def list_silences(connection: sa.Connection, *, unexpired_at_ns: int | None = None) -> list[dict]:
    """Silences as dicts (`Silence.from_dict` reads them), by start; optionally only those
    not yet over at `unexpired_at_ns`."""
    query = sa.select(_SILENCES).order_by(_SILENCES.c.starts_at_ns, _SILENCES.c.id)
    if unexpired_at_ns is not None:
        query = query.where(_SILENCES.c.ends_at_ns > unexpired_at_ns)
    return [_silence_dict(row) for row in connection.execute(query)]


def get_silence(connection: sa.Connection, silence_id: str) -> dict | None:
    """One silence as a dict (as `list_silences` gives them), or None if there is none."""
    row = connection.execute(sa.select(_SILENCES).where(_SILENCES.c.id == silence_id)).first()
    return None if row is None else _silence_dict(row)


def _silence_dict(row: sa.Row) -> dict[str, Any]:
    return {
        "id": row.id,
        "matchers": list(row.matchers),
        "starts_at_ns": row.starts_at_ns,
        "ends_at_ns": row.ends_at_ns,
        "comment": row.comment,
        "created_by": row.created_by,
    }
