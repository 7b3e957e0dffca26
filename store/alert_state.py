"""The alerting core's state and the silences, kept in SQL so any process can carry on.

The state is one JSON document (alerts, groups, the sent log) with a version. An
evaluator locks it for its pass (`lock_engine_state`), then saves it in the
transaction that also queues the notifications that step produced, and only if
the version is the one it read. Two evaluators therefore never both send for the
same step: the second waits for the first, then steps from its result.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from .alerting import AlertGroupState, AlertSilence
from .dialect import dialect_insert
from .keyset import after_key

_STATE = AlertGroupState.__table__
_SILENCES = AlertSilence.__table__
ENGINE_STATE_KEY = "engine"


def lock_engine_state(connection: sa.Connection, *, now_ns: int) -> None:
    """Take the state for this transaction: other evaluators wait until it commits.

    Creates the (empty) row on first use; on SQLite the write that does so, or a no-op
    UPDATE, takes the database's write lock first, so the pass cannot fail later on a
    stale read; on PostgreSQL the row is locked FOR UPDATE.
    """
    connection.execute(
        dialect_insert(connection, _STATE)
        .values(key=ENGINE_STATE_KEY, state=None, next_wakeup_ns=None, updated_at_ns=0)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    if connection.dialect.name == "postgresql":
        connection.execute(
            sa.select(_STATE.c.key).where(_STATE.c.key == ENGINE_STATE_KEY).with_for_update()
        )
    else:
        connection.execute(
            sa.update(_STATE)
            .where(_STATE.c.key == ENGINE_STATE_KEY)
            .values(updated_at_ns=_STATE.c.updated_at_ns)
        )


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
    writer got there first (the caller's transaction must then roll back). Under
    `lock_engine_state` nobody can, so False means a caller skipped the lock."""
    updated = connection.execute(
        sa.update(_STATE)
        .where(_STATE.c.key == ENGINE_STATE_KEY, _STATE.c.updated_at_ns == seen_version)
        .values(
            state=state,
            next_wakeup_ns=next_wakeup_ns,
            updated_at_ns=max(now_ns, seen_version + 1),
        )
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


def list_silences(
    connection: sa.Connection,
    *,
    unexpired_at_ns: int | None = None,
    after: tuple[int, str] | None = None,
    limit: int | None = None,
) -> list[dict]:
    """Silences as dicts (`Silence.from_dict` reads them), by start; optionally only those
    not yet over at `unexpired_at_ns`, and a page of `limit` after the (starts_at_ns, id)
    key `after`."""
    query = sa.select(_SILENCES).order_by(_SILENCES.c.starts_at_ns, _SILENCES.c.id)
    if unexpired_at_ns is not None:
        query = query.where(_SILENCES.c.ends_at_ns > unexpired_at_ns)
    if after is not None:
        query = query.where(after_key((_SILENCES.c.starts_at_ns, _SILENCES.c.id), after))
    if limit is not None:
        query = query.limit(limit)
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
