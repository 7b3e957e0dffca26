"""Queries of the model registry: version numbers, states, and the history that answers
"which version was live at time T".

Every write transaction starts on the model's counter row, so writers of one model
queue behind each other instead of racing: registration increments it with one
upsert that returns the new number (PostgreSQL's ON CONFLICT DO UPDATE locks the
row, SQLite's write takes the database lock and waits on the busy timeout), and a
move locks it first (`lock_model`). The numbers are therefore unique and, since an
aborted transaction takes its increment with it, contiguous.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from .dialect import dialect_insert
from .registry import RegistryHistory, RegistryModel, RegistryVersion, RegistryVersionState

_MODELS = RegistryModel.__table__
_VERSIONS = RegistryVersion.__table__
_STATES = RegistryVersionState.__table__
_HISTORY = RegistryHistory.__table__
_LIVE = "live"
_CANDIDATE = "candidate"


def allocate_version(connection: sa.Connection, model: str, *, now_ns: int) -> int:
    """The next version number of `model` (1 for a new model), taken in this transaction.

    Call it first in the transaction: on SQLite a write that follows a read may fail
    at once instead of waiting for the lock.
    """
    statement = dialect_insert(connection, _MODELS).values(
        model=model, last_version=1, created_at_ns=now_ns
    )
    statement = statement.on_conflict_do_update(
        index_elements=["model"], set_={"last_version": _MODELS.c.last_version + 1}
    ).returning(_MODELS.c.last_version)
    return int(connection.execute(statement).scalar_one())


def lock_model(connection: sa.Connection, model: str) -> bool:
    """Take `model`'s moves for this transaction; False if the model was never registered.

    PostgreSQL locks the counter row FOR UPDATE; on SQLite a no-op UPDATE takes the
    write lock before anything is read, so the move cannot fail later on a stale read.
    """
    if connection.dialect.name == "postgresql":
        query = sa.select(_MODELS.c.model).where(_MODELS.c.model == model).with_for_update()
        return connection.execute(query).first() is not None
    touch = (
        sa.update(_MODELS)
        .where(_MODELS.c.model == model)
        .values(last_version=_MODELS.c.last_version)
    )
    return connection.execute(touch).rowcount == 1


def insert_version(connection: sa.Connection, values: dict[str, Any]) -> None:
    """Store a registered version (keys: the columns of `registry_versions`)."""
    connection.execute(sa.insert(_VERSIONS), dict(values))


def get_version(connection: sa.Connection, model: str, version: int) -> dict[str, Any] | None:
    """The registered version as a column → value mapping, or None if there is none."""
    query = sa.select(_VERSIONS).where(_VERSIONS.c.model == model, _VERSIONS.c.version == version)
    row = connection.execute(query).first()
    return None if row is None else dict(row._mapping)


def version_state(
    connection: sa.Connection, model: str, environment: str, version: int
) -> tuple[str, int | None]:
    """(state, previous live version) of a version in an environment; never moved: candidate."""
    query = sa.select(_STATES.c.state, _STATES.c.previous_live).where(
        _STATES.c.model == model,
        _STATES.c.environment == environment,
        _STATES.c.version == version,
    )
    row = connection.execute(query).first()
    return (_CANDIDATE, None) if row is None else (row.state, row.previous_live)


def set_state(
    connection: sa.Connection,
    model: str,
    environment: str,
    version: int,
    state: str,
    *,
    previous_live: int | None,
    now_ns: int,
) -> None:
    """Record a version's state in an environment (the history row is written separately)."""
    statement = dialect_insert(connection, _STATES).values(
        model=model,
        environment=environment,
        version=version,
        state=state,
        previous_live=previous_live,
        updated_at_ns=now_ns,
    )
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["model", "environment", "version"],
            set_={
                "state": statement.excluded.state,
                "previous_live": statement.excluded.previous_live,
                "updated_at_ns": statement.excluded.updated_at_ns,
            },
        )
    )


def live_version(connection: sa.Connection, model: str, environment: str) -> int | None:
    """The version live in an environment now, or None."""
    query = sa.select(_STATES.c.version).where(
        _STATES.c.model == model,
        _STATES.c.environment == environment,
        _STATES.c.state == _LIVE,
    )
    return connection.execute(query).scalar_one_or_none()


def version_states(
    connection: sa.Connection, model: str, environment: str
) -> list[tuple[int, str]]:
    """(version, state) of every registered version of `model` in an environment, oldest first."""
    joined = _VERSIONS.outerjoin(
        _STATES,
        sa.and_(
            _STATES.c.model == _VERSIONS.c.model,
            _STATES.c.version == _VERSIONS.c.version,
            _STATES.c.environment == environment,
        ),
    )
    query = (
        sa.select(_VERSIONS.c.version, sa.func.coalesce(_STATES.c.state, _CANDIDATE))
        .select_from(joined)
        .where(_VERSIONS.c.model == model)
        .order_by(_VERSIONS.c.version)
    )
    return [(int(version), str(state)) for version, state in connection.execute(query)]


def append_history(connection: sa.Connection, values: dict[str, Any]) -> None:
    """Append one move (keys: the columns of `registry_history` but `id`). Nothing updates it."""
    connection.execute(sa.insert(_HISTORY), dict(values))


def history(
    connection: sa.Connection, model: str, *, version: int | None = None
) -> list[dict[str, Any]]:
    """The moves of a model (or of one of its versions) in the order they were made."""
    query = sa.select(_HISTORY).where(_HISTORY.c.model == model)
    if version is not None:
        query = query.where(_HISTORY.c.version == version)
    query = query.order_by(_HISTORY.c.at_ns, _HISTORY.c.id)
    return [dict(row._mapping) for row in connection.execute(query)]


def live_at(connection: sa.Connection, model: str, environment: str, time_ns: int) -> int | None:
    """The version live in an environment at `time_ns`, from the history alone.

    The last move into or out of live at or before `time_ns` decides: into live, that
    version served; out of live, none did. Moves made together share a time and are
    ordered by id, which follows the order they were written in (retire, then promote).
    """
    query = (
        sa.select(_HISTORY.c.version, _HISTORY.c.to_state)
        .where(
            _HISTORY.c.model == model,
            _HISTORY.c.environment == environment,
            _HISTORY.c.at_ns <= time_ns,
            sa.or_(_HISTORY.c.to_state == _LIVE, _HISTORY.c.from_state == _LIVE),
        )
        .order_by(_HISTORY.c.at_ns.desc(), _HISTORY.c.id.desc())
        .limit(1)
    )
    row = connection.execute(query).first()
    return int(row.version) if row is not None and row.to_state == _LIVE else None
