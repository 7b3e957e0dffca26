"""The notification outbox: enqueue, claim with a lease, acknowledge, and the delivery log.

Claiming is what lets any number of dispatchers run side by side: a row is
sent only by the dispatcher whose lease on it is current. The claim is one
UPDATE … RETURNING (`leased_claim`), with `FOR UPDATE SKIP LOCKED` on PostgreSQL so
concurrent dispatchers take different rows without waiting. A dispatcher that dies
mid-send leaves its lease to expire, and the row is sent again with the same id,
which the receiver sees as the idempotency key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from .alerting import AlertDeliveryAttempt, AlertNotification, AlertReceiverHealth
from .dialect import dialect_insert
from .keyset import after_key
from .leased_claim import claim_due_rows

_OUTBOX = AlertNotification.__table__
_ATTEMPTS = AlertDeliveryAttempt.__table__
_RECEIVERS = AlertReceiverHealth.__table__


class DeliveryState(StrEnum):
    """Where a notification row stands."""

    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"
    """Refused by the receiver, or out of retries: kept for the log and a meta-alert."""


def enqueue_notifications(connection: sa.Connection, rows: Iterable[Mapping[str, Any]]) -> int:
    """Add notifications (keys: id, receiver, group_key, status, body, created_at_ns);
    an id already queued is ignored, so re-enqueueing after a crash is harmless.
    Returns how many were new."""
    values = [
        {
            **row,
            "state": DeliveryState.PENDING,
            "attempts": 0,
            "next_attempt_ns": row["created_at_ns"],
            "lease_expires_ns": 0,
        }
        for row in rows
    ]
    if not values:
        return 0
    statement = (
        dialect_insert(connection, _OUTBOX)
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(_OUTBOX.c.id)
    )
    return len(connection.scalars(statement, values).all())


def claim_due(
    connection: sa.Connection, owner: str, *, now_ns: int, lease_ns: int, limit: int = 50
) -> list[sa.Row]:
    """Take up to `limit` pending notifications that are due and not leased; they are
    `owner`'s until `now_ns + lease_ns` (see `leased_claim`)."""
    return claim_due_rows(connection, _OUTBOX, owner, now_ns=now_ns, lease_ns=lease_ns, limit=limit)


def postpone(connection: sa.Connection, row: sa.Row, owner: str, *, until_ns: int) -> bool:
    """Give a claimed row back, due again at `until_ns`, without counting an attempt
    (a client-side rate limit said not yet)."""
    released = connection.execute(
        sa.update(_OUTBOX)
        .where(_OUTBOX.c.id == row.id, _OUTBOX.c.lease_owner == owner)
        .values(next_attempt_ns=until_ns, lease_owner=None, lease_expires_ns=0)
    )
    return released.rowcount == 1


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """What one delivery attempt came to, as the dispatcher decided."""

    outcome: str
    status_code: int | None
    detail: str
    latency_ms: float
    state: DeliveryState
    next_attempt_ns: int | None
    """When to try again (state pending); None once delivered or dead."""


def record_attempt(
    connection: sa.Connection, row: sa.Row, owner: str, record: AttemptRecord, *, now_ns: int
) -> bool:
    """Log the attempt and settle the row, if `owner` still holds its lease (False if
    the lease expired and another dispatcher took the row: that one settles it)."""
    values: dict[str, Any] = {
        "attempts": row.attempts + 1,
        "state": record.state,
        "lease_owner": None,
        "lease_expires_ns": 0,
        "last_error": record.detail or None,
    }
    if record.state is DeliveryState.DELIVERED:
        values["delivered_at_ns"] = now_ns
        values["last_error"] = None
    if record.next_attempt_ns is not None:
        values["next_attempt_ns"] = record.next_attempt_ns
    settled = connection.execute(
        sa.update(_OUTBOX)
        .where(_OUTBOX.c.id == row.id, _OUTBOX.c.lease_owner == owner)
        .values(**values)
    )
    if settled.rowcount != 1:
        return False
    connection.execute(
        sa.insert(_ATTEMPTS).values(
            notification_id=row.id,
            receiver=row.receiver,
            attempt=row.attempts + 1,
            at_ns=now_ns,
            outcome=record.outcome,
            status_code=record.status_code,
            detail=record.detail,
            latency_ms=record.latency_ms,
            next_attempt_ns=record.next_attempt_ns,
        )
    )
    return True


def delivery_log(
    connection: sa.Connection,
    *,
    notification_id: str | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> list[sa.Row]:
    """Attempts, newest first (of one notification, or of all; older than `before_id`)."""
    query = sa.select(_ATTEMPTS).order_by(_ATTEMPTS.c.id.desc()).limit(limit)
    if notification_id is not None:
        query = query.where(_ATTEMPTS.c.notification_id == notification_id)
    if before_id is not None:
        query = query.where(_ATTEMPTS.c.id < before_id)
    return list(connection.execute(query))


def notifications(
    connection: sa.Connection,
    *,
    states: Sequence[str] | None = None,
    receiver: str | None = None,
    limit: int = 100,
    after: tuple[int, str] | None = None,
) -> list[sa.Row]:
    """Outbox rows, oldest first, filtered by state and receiver; those after the
    (created_at_ns, id) key `after` when given."""
    query = sa.select(_OUTBOX).order_by(_OUTBOX.c.created_at_ns, _OUTBOX.c.id).limit(limit)
    if after is not None:
        query = query.where(after_key((_OUTBOX.c.created_at_ns, _OUTBOX.c.id), after))
    if states:
        query = query.where(_OUTBOX.c.state.in_(list(states)))
    if receiver is not None:
        query = query.where(_OUTBOX.c.receiver == receiver)
    return list(connection.execute(query))


@dataclass(frozen=True, slots=True)
class PendingSummary:
    count: int
    oldest_created_ns: int | None


def pending_summary(connection: sa.Connection) -> PendingSummary:
    """How many notifications wait, and since when the oldest (for metrics and health)."""
    count, oldest = connection.execute(
        sa.select(sa.func.count(), sa.func.min(_OUTBOX.c.created_at_ns)).where(
            _OUTBOX.c.state == DeliveryState.PENDING
        )
    ).one()
    return PendingSummary(int(count), oldest)


def receiver_health(connection: sa.Connection, name: str) -> sa.Row | None:
    return connection.execute(sa.select(_RECEIVERS).where(_RECEIVERS.c.name == name)).first()


def all_receiver_health(connection: sa.Connection) -> list[sa.Row]:
    """Every receiver that has been tried, by name."""
    return list(connection.execute(sa.select(_RECEIVERS).order_by(_RECEIVERS.c.name)))


def record_receiver_result(
    connection: sa.Connection,
    name: str,
    *,
    now_ns: int,
    success: bool,
    disable_reason: str | None = None,
) -> None:
    """Update a receiver's health; `disable_reason` turns it off until re-enabled."""
    connection.execute(
        dialect_insert(connection, _RECEIVERS)
        .values(name=name, disabled=False, consecutive_failures=0)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    values: dict[str, Any] = (
        {"last_success_ns": now_ns, "consecutive_failures": 0}
        if success
        else {
            "last_failure_ns": now_ns,
            "consecutive_failures": _RECEIVERS.c.consecutive_failures + 1,
        }
    )
    if disable_reason is not None:
        values |= {"disabled": True, "disabled_reason": disable_reason}
    connection.execute(sa.update(_RECEIVERS).where(_RECEIVERS.c.name == name).values(**values))


def enable_receiver(connection: sa.Connection, name: str) -> None:
    """Turn a disabled receiver back on (after its destination was fixed)."""
    connection.execute(
        sa.update(_RECEIVERS)
        .where(_RECEIVERS.c.name == name)
        .values(disabled=False, disabled_reason=None, consecutive_failures=0)
    )
