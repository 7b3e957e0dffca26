"""The model registry: versions numbered in the registering transaction, a state machine
per (model, environment), and a history that every move appends to.

States: candidate → canary → live → retired, or rolled_back from candidate, canary or
live. At most one version is live per (model, environment): promoting one retires the
live one in the same transaction, and rolling back a live version makes the one it
replaced live again. Each move, the automatic ones included, appends a history row
with who, when (the caller's `now_ns`), why and the evidence, so "which version
served this deployment at time T" is answered from what was recorded then.

The functions take the caller's connection, so a move commits together with what it
causes (an outbox row, a rollout decision). Call a write first in its transaction:
it takes the model's lock before reading, which is what serializes writers.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from inferloop.store import registry_queries as queries


class VersionState(enum.StrEnum):
    """Where a version stands in one environment."""

    CANDIDATE = "candidate"
    CANARY = "canary"
    LIVE = "live"
    RETIRED = "retired"
    ROLLED_BACK = "rolled_back"


LEGAL_MOVES: Mapping[VersionState, frozenset[VersionState]] = {
    VersionState.CANDIDATE: frozenset({VersionState.CANARY, VersionState.ROLLED_BACK}),
    VersionState.CANARY: frozenset({VersionState.LIVE, VersionState.ROLLED_BACK}),
    VersionState.LIVE: frozenset({VersionState.RETIRED, VersionState.ROLLED_BACK}),
    VersionState.RETIRED: frozenset(),
    VersionState.ROLLED_BACK: frozenset(),
}
"""The moves a caller may ask for. Retired → live happens only as a rollback's restore."""


class RegistryError(Exception):
    """A registry request that cannot be carried out."""


class UnknownVersionError(RegistryError, LookupError):
    """The model or version was never registered."""


class IllegalMoveError(RegistryError, ValueError):
    """The requested move is not in `LEGAL_MOVES` from the version's current state."""

    def __init__(
        self, model: str, version: int, environment: str, current: str, requested: str
    ) -> None:
        allowed = ", ".join(sorted(LEGAL_MOVES[VersionState(current)])) or "none (final state)"
        super().__init__(
            f"{model} version {version} in {environment!r} is {current}: cannot move to "
            f"{requested}; allowed: {allowed}"
        )
        self.current = VersionState(current)
        self.requested = requested


@dataclass(frozen=True, slots=True)
class RegisteredVersion:
    """A version as it was registered: never changed afterwards."""

    model: str
    version: int
    artifact_uri: str
    registered_by: str
    registered_at_ns: int
    metrics: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    source_snapshot_uri: str | None = None
    source_snapshot_hash: str | None = None


@dataclass(frozen=True, slots=True)
class RegistryMove:
    """One history row: a version's move in an environment (None: the registration)."""

    model: str
    version: int
    environment: str | None
    from_state: VersionState | None
    to_state: VersionState
    who: str
    why: str
    evidence: dict[str, Any]
    at_ns: int


@dataclass(frozen=True, slots=True)
class VersionStatus:
    """A version's current state in one environment."""

    version: int
    state: VersionState


def check_move(current: VersionState | str, requested: VersionState | str) -> bool:
    """Whether `LEGAL_MOVES` allows `current` → `requested` (pure; no error raised)."""
    try:
        return VersionState(requested) in LEGAL_MOVES[VersionState(current)]
    except ValueError:
        return False


def register_version(
    connection: sa.Connection,
    model: str,
    *,
    artifact_uri: str,
    who: str,
    now_ns: int,
    metrics: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    source_snapshot_uri: str | None = None,
    source_snapshot_hash: str | None = None,
) -> RegisteredVersion:
    """Register a new version of `model`; its number is the next one, taken in this transaction.

    The version starts as a candidate in every environment; the history's first row
    for it records the registration.
    """
    _require_text(model=model, artifact_uri=artifact_uri, who=who)
    registered = RegisteredVersion(
        model=model,
        version=queries.allocate_version(connection, model, now_ns=now_ns),
        artifact_uri=artifact_uri,
        registered_by=who,
        registered_at_ns=now_ns,
        metrics=dict(metrics or {}),
        metadata=dict(metadata or {}),
        source_snapshot_uri=source_snapshot_uri,
        source_snapshot_hash=source_snapshot_hash,
    )
    queries.insert_version(
        connection,
        {
            "model": model,
            "version": registered.version,
            "artifact_uri": artifact_uri,
            "metrics": registered.metrics,
            "metadata": registered.metadata,
            "source_snapshot_uri": source_snapshot_uri,
            "source_snapshot_hash": source_snapshot_hash,
            "registered_by": who,
            "registered_at_ns": now_ns,
        },
    )
    evidence = {
        "artifact_uri": artifact_uri,
        "metrics": registered.metrics,
        "source_snapshot_uri": source_snapshot_uri,
        "source_snapshot_hash": source_snapshot_hash,
    }
    registration = RegistryMove(
        model=model,
        version=registered.version,
        environment=None,
        from_state=None,
        to_state=VersionState.CANDIDATE,
        who=who,
        why="registered",
        evidence=evidence,
        at_ns=now_ns,
    )
    _append(connection, registration)
    return registered


def move_version(
    connection: sa.Connection,
    model: str,
    version: int,
    to: VersionState | str,
    *,
    environment: str,
    who: str,
    why: str,
    now_ns: int,
    evidence: Mapping[str, Any] | None = None,
) -> list[RegistryMove]:
    """Move a version in an environment; returns every move made, the automatic ones too.

    To live: the version live before is retired first. Rolling back a live version
    restores the one it replaced, if that one is still retired. Raises
    `UnknownVersionError` or `IllegalMoveError`; nothing is written then.
    """
    _require_text(environment=environment, who=who, why=why)
    requested = str(to)
    if (
        not queries.lock_model(connection, model)
        or queries.get_version(connection, model, version) is None
    ):
        raise UnknownVersionError(f"{model} version {version} is not registered")
    current, previous_live = queries.version_state(connection, model, environment, version)
    if not check_move(current, requested):
        raise IllegalMoveError(model, version, environment, current, requested)
    target = VersionState(requested)
    proof = dict(evidence or {})
    moves: list[RegistryMove] = []

    def record(number: int, old: str, new: VersionState, reason: str, replaced: int | None):
        queries.set_state(
            connection, model, environment, number, str(new), previous_live=replaced, now_ns=now_ns
        )
        move = RegistryMove(
            model, number, environment, VersionState(old), new, who, reason, proof, now_ns
        )
        _append(connection, move)
        moves.append(move)

    if target is VersionState.LIVE:
        replaced = queries.live_version(connection, model, environment)
        if replaced is not None:
            _, its_previous = queries.version_state(connection, model, environment, replaced)
            record(
                replaced,
                VersionState.LIVE,
                VersionState.RETIRED,
                f"replaced by version {version}: {why}",
                its_previous,
            )
        record(version, current, target, why, replaced)
        return moves
    record(version, current, target, why, previous_live)
    if (
        current == VersionState.LIVE
        and target is VersionState.ROLLED_BACK
        and previous_live is not None
    ):
        restored_state, restored_previous = queries.version_state(
            connection, model, environment, previous_live
        )
        if restored_state == VersionState.RETIRED:
            record(
                previous_live,
                VersionState.RETIRED,
                VersionState.LIVE,
                f"restored: version {version} rolled back: {why}",
                restored_previous,
            )
    return moves


def get_version(connection: sa.Connection, model: str, version: int) -> RegisteredVersion:
    """A registered version; `UnknownVersionError` if there is none."""
    row = queries.get_version(connection, model, version)
    if row is None:
        raise UnknownVersionError(f"{model} version {version} is not registered")
    return RegisteredVersion(
        model=row["model"],
        version=row["version"],
        artifact_uri=row["artifact_uri"],
        registered_by=row["registered_by"],
        registered_at_ns=row["registered_at_ns"],
        metrics=dict(row["metrics"]),
        metadata=dict(row["metadata"]),
        source_snapshot_uri=row["source_snapshot_uri"],
        source_snapshot_hash=row["source_snapshot_hash"],
    )


def version_states(
    connection: sa.Connection, model: str, *, environment: str
) -> list[VersionStatus]:
    """The current state of every version of `model` in an environment, oldest first."""
    return [
        VersionStatus(number, VersionState(state))
        for number, state in queries.version_states(connection, model, environment)
    ]


def live_version(connection: sa.Connection, model: str, *, environment: str) -> int | None:
    """The version live in an environment now, or None."""
    return queries.live_version(connection, model, environment)


def live_at(connection: sa.Connection, model: str, *, environment: str, time_ns: int) -> int | None:
    """The version that served `model` in an environment at `time_ns`, from the history."""
    return queries.live_at(connection, model, environment, time_ns)


def version_history(
    connection: sa.Connection, model: str, version: int | None = None
) -> list[RegistryMove]:
    """Every move of a model, or of one version, in the order it was made."""
    return [
        RegistryMove(
            model=row["model"],
            version=row["version"],
            environment=row["environment"],
            from_state=None if row["from_state"] is None else VersionState(row["from_state"]),
            to_state=VersionState(row["to_state"]),
            who=row["actor"],
            why=row["reason"],
            evidence=dict(row["evidence"]),
            at_ns=row["at_ns"],
        )
        for row in queries.history(connection, model, version=version)
    ]


def _append(connection: sa.Connection, move: RegistryMove) -> None:
    queries.append_history(
        connection,
        {
            "model": move.model,
            "version": move.version,
            "environment": move.environment,
            "from_state": None if move.from_state is None else str(move.from_state),
            "to_state": str(move.to_state),
            "actor": move.who,
            "reason": move.why,
            "evidence": move.evidence,
            "at_ns": move.at_ns,
        },
    )


def _require_text(**values: str) -> None:
    """Who, why and names are part of the record: an empty one is refused, not stored."""
    empty = [name for name, value in values.items() if not isinstance(value, str) or not value]
    if empty:
        raise ValueError(f"registry: {', '.join(empty)} must be non-empty text")
