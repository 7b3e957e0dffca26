"""Queries of the feedback loop: rollout checks, the request outbox, and the per-arm counts a
rollout check is computed from.

The outbox follows `outbox.py`: a row per (CloudEvent id, destination), inserted ON CONFLICT
DO NOTHING so a decision enqueued twice (a retry, a second worker) stays one row; claimed
with one UPDATE … RETURNING (FOR UPDATE SKIP LOCKED on PostgreSQL) and settled only under
the claimer's lease, so a dispatcher that lost its lease cannot overwrite the new owner.
A request whose payload takes work to make (a retrain request's snapshot) is first
reserved in the `preparing` state, which fixes its decision, then released as pending.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from .dialect import dialect_insert
from .feedback_tables import FeedbackRequest, RolloutCheck
from .leased_claim import claim_due_rows
from .registry import RegistryHistory, RegistryVersionState
from .tables import Event

_CHECKS = RolloutCheck.__table__
_REQUESTS = FeedbackRequest.__table__
_STATES = RegistryVersionState.__table__
_HISTORY = RegistryHistory.__table__
_EVENTS = Event.__table__
PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"


def canaries(connection: sa.Connection) -> list[tuple[str, str, int]]:
    """(model, environment, version) of every version now in canary, in a stable order."""
    query = (
        sa.select(_STATES.c.model, _STATES.c.environment, _STATES.c.version)
        .where(_STATES.c.state == "canary")
        .order_by(_STATES.c.model, _STATES.c.environment, _STATES.c.version)
    )
    return [(str(m), str(e), int(v)) for m, e, v in connection.execute(query)]


def canary_since(connection: sa.Connection, model: str, environment: str, version: int) -> int:
    """When the version last moved to canary in the environment (the rollout's start)."""
    query = sa.select(sa.func.max(_HISTORY.c.at_ns)).where(
        _HISTORY.c.model == model,
        _HISTORY.c.environment == environment,
        _HISTORY.c.version == version,
        _HISTORY.c.to_state == "canary",
    )
    return int(connection.execute(query).scalar_one())


def insert_check(connection: sa.Connection, values: Mapping[str, Any]) -> bool:
    """Store one check; False if that check number of the candidate is already stored."""
    statement = (
        dialect_insert(connection, _CHECKS)
        .values(**values)
        .on_conflict_do_nothing(
            index_elements=["model", "environment", "candidate_version", "check_number"]
        )
        .returning(_CHECKS.c.id)
    )
    return connection.execute(statement).first() is not None


def rollout_checks(
    connection: sa.Connection, model: str, environment: str, candidate_version: int
) -> list[dict[str, Any]]:
    """A candidate's stored checks, in check order."""
    query = (
        sa.select(_CHECKS)
        .where(
            _CHECKS.c.model == model,
            _CHECKS.c.environment == environment,
            _CHECKS.c.candidate_version == candidate_version,
        )
        .order_by(_CHECKS.c.check_number)
    )
    return [dict(row._mapping) for row in connection.execute(query)]


def arm_counts(
    connection: sa.Connection,
    *,
    model: str,
    environment: str,
    version: str,
    start_ns: int,
    end_ns: int,
    slow_above_ns: int,
) -> tuple[int, int, int]:
    """(calls, errors, calls slower than `slow_above_ns`) of one version in [start, end)."""
    query = sa.select(
        sa.func.count(),
        sa.func.coalesce(sa.func.sum(sa.case((_EVENTS.c.status == "error", 1), else_=0)), 0),
        sa.func.coalesce(
            sa.func.sum(sa.case((_EVENTS.c.latency_ns > slow_above_ns, 1), else_=0)), 0
        ),
    ).where(*_window(model, environment, version, start_ns, end_ns))
    calls, errors, slow = connection.execute(query).one()
    return int(calls), int(errors), int(slow)


def latency_quantile(
    connection: sa.Connection,
    *,
    model: str,
    environment: str,
    version: str,
    start_ns: int,
    end_ns: int,
    q: float,
) -> int | None:
    """The `q` quantile of latency (nearest rank, exact) of one version in [start, end)."""
    where = _window(model, environment, version, start_ns, end_ns)
    count = int(connection.execute(sa.select(sa.func.count()).where(*where)).scalar_one())
    if not count:
        return None
    rank = min(count - 1, max(0, int(q * count + 0.999999999) - 1))
    query = (
        sa.select(_EVENTS.c.latency_ns)
        .where(*where)
        .order_by(_EVENTS.c.latency_ns)
        .offset(rank)
        .limit(1)
    )
    return int(connection.execute(query).scalar_one())


def _window(
    model: str, environment: str, version: str, start_ns: int, end_ns: int
) -> list[sa.ColumnElement[bool]]:
    return [
        _EVENTS.c.model == model,
        _EVENTS.c.version == version,
        _EVENTS.c.environment == environment,
        _EVENTS.c.start_time_ns >= start_ns,
        _EVENTS.c.start_time_ns < end_ns,
    ]


def enqueue_requests(connection: sa.Connection, rows: Iterable[Mapping[str, Any]]) -> int:
    """Add requests (keys: id, destination, type, subject, model, event, created_at_ns); a
    (id, destination) already queued is ignored. Returns how many were new."""
    values = [
        {
            **row,
            "state": PENDING,
            "attempts": 0,
            "next_attempt_ns": row["created_at_ns"],
            "lease_expires_ns": 0,
        }
        for row in rows
    ]
    if not values:
        return 0
    statement = (
        dialect_insert(connection, _REQUESTS)
        .on_conflict_do_nothing(index_elements=["id", "destination"])
        .returning(_REQUESTS.c.id)
    )
    return len(connection.scalars(statement, values).all())


def claim_due_requests(
    connection: sa.Connection, owner: str, *, now_ns: int, lease_ns: int, limit: int = 50
) -> list[sa.Row]:
    """Take up to `limit` due, unleased pending requests for `owner` until now + lease."""
    return claim_due_rows(
        connection, _REQUESTS, owner, now_ns=now_ns, lease_ns=lease_ns, limit=limit
    )


def settle_request(
    connection: sa.Connection, row: sa.Row, owner: str, values: Mapping[str, Any]
) -> bool:
    """Record an attempt's result and release the lease, if `owner` still holds it."""
    settled = connection.execute(
        sa.update(_REQUESTS)
        .where(
            _REQUESTS.c.id == row.id,
            _REQUESTS.c.destination == row.destination,
            _REQUESTS.c.lease_owner == owner,
        )
        .values(**values, lease_owner=None, lease_expires_ns=0)
    )
    return settled.rowcount == 1


def feedback_requests(
    connection: sa.Connection, *, model: str | None = None, type: str | None = None
) -> list[dict[str, Any]]:
    """Outbox rows, oldest first, optionally of one model and one CloudEvent type."""
    query = sa.select(_REQUESTS).order_by(
        _REQUESTS.c.created_at_ns, _REQUESTS.c.id, _REQUESTS.c.destination
    )
    if model is not None:
        query = query.where(_REQUESTS.c.model == model)
    if type is not None:
        query = query.where(_REQUESTS.c.type == type)
    return [dict(row._mapping) for row in connection.execute(query)]


PREPARING = "preparing"
"""A request whose decision is taken but whose payload is still being made (a retrain
request's snapshot is exported between the two): the dispatcher never claims it."""


def lock_model_requests(connection: sa.Connection, model: str) -> None:
    """Serialize the request decisions of one model for this transaction: call it first.

    PostgreSQL takes a transaction-scoped advisory lock keyed by the model; on SQLite the
    no-op UPDATE takes the database's write lock before anything is read (the model may
    have no registry row to lock, so `registry_queries.lock_model` cannot be used).
    """
    if connection.dialect.name == "postgresql":
        digest = hashlib.sha256(f"inferloop.feedback.requests:{model}".encode()).digest()
        key = int.from_bytes(digest[:8], "big", signed=True)
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
        return
    connection.execute(
        sa.update(_REQUESTS)
        .where(_REQUESTS.c.model == model, _REQUESTS.c.state == PREPARING)
        .values(attempts=_REQUESTS.c.attempts)
    )


def reserve_requests(connection: sa.Connection, rows: Iterable[Mapping[str, Any]]) -> int:
    """Add requests in the `preparing` state (keys as for `enqueue_requests`); an (id,
    destination) already there is ignored. Returns how many were new."""
    values = [
        {
            **row,
            "state": PREPARING,
            "attempts": 0,
            "next_attempt_ns": row["created_at_ns"],
            "lease_expires_ns": 0,
        }
        for row in rows
    ]
    if not values:
        return 0
    statement = (
        dialect_insert(connection, _REQUESTS)
        .on_conflict_do_nothing(index_elements=["id", "destination"])
        .returning(_REQUESTS.c.id)
    )
    return len(connection.scalars(statement, values).all())


def request_rows(connection: sa.Connection, request_id: str) -> list[dict[str, Any]]:
    """Every destination's row of one request, by destination."""
    query = (
        sa.select(_REQUESTS).where(_REQUESTS.c.id == request_id).order_by(_REQUESTS.c.destination)
    )
    return [dict(row._mapping) for row in connection.execute(query)]


def release_prepared(
    connection: sa.Connection, request_id: str, event: Mapping[str, Any], *, now_ns: int
) -> int:
    """Turn a prepared request into a pending one carrying its final `event`, due now;
    returns how many rows moved (0: another worker released it first)."""
    released = connection.execute(
        sa.update(_REQUESTS)
        .where(_REQUESTS.c.id == request_id, _REQUESTS.c.state == PREPARING)
        .values(event=dict(event), state=PENDING, created_at_ns=now_ns, next_attempt_ns=now_ns)
    )
    return int(released.rowcount)


def preparing_requests(connection: sa.Connection, *, type: str) -> list[tuple[str, str]]:
    """(id, model) of the requests of one type left in `preparing` (their maker crashed
    or is still at work), oldest first."""
    query = (
        sa.select(_REQUESTS.c.id, sa.func.min(_REQUESTS.c.model))
        .where(_REQUESTS.c.type == type, _REQUESTS.c.state == PREPARING)
        .group_by(_REQUESTS.c.id)
        .order_by(sa.func.min(_REQUESTS.c.created_at_ns), _REQUESTS.c.id)
    )
    return [(str(i), str(m)) for i, m in connection.execute(query)]


def requests_by_event(connection: sa.Connection, *, model: str, type: str) -> list[dict[str, Any]]:
    """A model's requests of one type, one entry per CloudEvent id (its first
    destination's row), oldest first; `event` is parsed when the driver gives text."""
    seen: dict[str, dict[str, Any]] = {}
    for row in feedback_requests(connection, model=model, type=type):
        if row["id"] not in seen:
            event = row["event"]
            seen[row["id"]] = {
                **row,
                "event": json.loads(event) if isinstance(event, str) else event,
            }
    return sorted(seen.values(), key=lambda r: (r["created_at_ns"], r["id"]))
