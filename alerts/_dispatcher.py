"""The dispatcher: the only part of alerting that does I/O. It drains the outbox.

Each round claims the due notifications with a lease (see `inferloop.store.outbox`),
sends each through its receiver, and settles it in the store: delivered; retried
later (429 after `Retry-After`, 5xx and network errors after a jittered back-off,
until the receiver's deadline); or dead (refused, out of retries, or the
destination is gone — then the receiver is disabled and a meta-alert goes to the
fallback receiver). The send happens outside any transaction, so a crash between
send and acknowledgement re-sends once, with the same notification id.
"""

from __future__ import annotations

import logging
import os
import random
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from inferloop.periodic import PeriodicThread
from inferloop.store.outbox import (
    AttemptRecord,
    DeliveryState,
    claim_due,
    enqueue_notifications,
    postpone,
    receiver_health,
    record_attempt,
    record_receiver_result,
)

from ._backoff import NS, RetryPolicy, next_attempt_ns
from ._metrics import AlertMetrics, reported_change_ns
from ._model import (
    Alert,
    AlertStatus,
    DeliveryOutcome,
    Notification,
    OutcomeKind,
    notification_from_dict,
    notification_to_dict,
)
from ._ratelimit import TokenBucket

logger = logging.getLogger(__name__)

META_GROUP_KEY = "inferloop-meta"


class Receiver(Protocol):
    """Anything that turns one notification into one delivery attempt."""

    def send(self, notification: Notification, *, timeout_s: float) -> DeliveryOutcome: ...


class Dispatcher:
    """`run_once()` drains what is due; `start()`/`stop()` run it in a named thread.

    `clock` returns Unix nanoseconds (the seam tests use to move time); `rng` drives
    the back-off jitter; `rate_limits` hold a receiver's sends to its bucket's pace
    (a held-back notification waits, it is not an attempt).
    """

    def __init__(
        self,
        engine: Engine,
        receivers: Mapping[str, Receiver],
        *,
        policies: Mapping[str, RetryPolicy] | None = None,
        rate_limits: Mapping[str, TokenBucket] | None = None,
        fallback_receiver: str | None = None,
        owner: str | None = None,
        clock: Callable[[], int] = time.time_ns,
        rng: random.Random | None = None,
        lease_s: float = 60.0,
        batch_size: int = 50,
        timeout_s: float = 10.0,
        interval_s: float = 0.5,
        metrics: AlertMetrics | None = None,
    ) -> None:
        if fallback_receiver is not None and fallback_receiver not in receivers:
            raise ValueError(f"fallback receiver {fallback_receiver!r} is not configured")
        if lease_s <= timeout_s:
            raise ValueError("lease_s must exceed timeout_s, or a slow send loses its lease")
        self.engine = engine
        self.receivers = dict(receivers)
        self.policies = dict(policies or {})
        self.rate_limits = dict(rate_limits or {})
        self.fallback_receiver = fallback_receiver
        self.owner = owner or f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.clock = clock
        self.rng = rng or random.Random()
        self.lease_ns = int(lease_s * NS)
        self.batch_size = batch_size
        self.timeout_s = timeout_s
        self.interval_s = interval_s
        self.metrics = metrics or AlertMetrics()
        self._thread = PeriodicThread(
            f"inferloop-dispatcher-{self.owner}", self._round, retry_s=interval_s, logger=logger
        )

    def run_once(self) -> int:
        """Send every notification due now (one claimed batch); returns how many were tried."""
        with self.engine.begin() as connection:
            rows = claim_due(
                connection,
                self.owner,
                now_ns=self.clock(),
                lease_ns=self.lease_ns,
                limit=self.batch_size,
            )
        for row in rows:
            if self._postponed(row):
                continue
            record = self._attempt(row)
            now_ns = self.clock()
            with self.engine.begin() as connection:
                if not record_attempt(connection, row, self.owner, record, now_ns=now_ns):
                    continue  # our lease ran out and another dispatcher owns the row now
                self._note_receiver(connection, row, record, now_ns)
            self._observe(row, record, now_ns)
        return len(rows)

    def _postponed(self, row: sa.Row) -> bool:
        """Hold the row back if its receiver's rate limit has no token: no attempt spent."""
        bucket = self.rate_limits.get(row.receiver)
        wait_s = 0.0 if bucket is None else bucket.try_acquire()
        if wait_s <= 0:
            return False
        with self.engine.begin() as connection:
            postpone(connection, row, self.owner, until_ns=self.clock() + int(wait_s * NS))
        return True

    def _observe(self, row: sa.Row, record: AttemptRecord, now_ns: int) -> None:
        self.metrics.attempts.labels(row.receiver, record.outcome).inc()
        changed_ns = reported_change_ns(row.body)
        if record.state is DeliveryState.DELIVERED and changed_ns is not None:
            latency_s = max(now_ns - changed_ns, 0) / NS
            self.metrics.latency.labels(row.receiver, row.status).observe(latency_s)

    def _attempt(self, row: sa.Row) -> AttemptRecord:
        receiver = self.receivers.get(row.receiver)
        if receiver is None:
            return _dead(f"no receiver named {row.receiver!r} is configured")
        with self.engine.connect() as connection:
            health = receiver_health(connection, row.receiver)
        if health is not None and health.disabled:
            return _dead(f"receiver disabled: {health.disabled_reason}")
        started = time.perf_counter()
        try:
            outcome = receiver.send(notification_from_dict(row.body), timeout_s=self.timeout_s)
        except Exception as error:  # a receiver bug must not stop the others
            # The message may quote a URL with a secret in it: log the type only.
            logger.warning("receiver %r raised %s", row.receiver, type(error).__name__)
            outcome = DeliveryOutcome(OutcomeKind.RETRY, detail=type(error).__name__)
        latency_ms = outcome.latency_s * 1000 or (time.perf_counter() - started) * 1000
        if outcome.kind is OutcomeKind.DELIVERED:
            return AttemptRecord(
                outcome.kind, outcome.status_code, "", latency_ms, DeliveryState.DELIVERED, None
            )
        if outcome.kind is OutcomeKind.RETRY:
            retry_at = next_attempt_ns(
                outcome,
                attempts=row.attempts + 1,
                created_at_ns=row.created_at_ns,
                now_ns=self.clock(),
                policy=self.policies.get(row.receiver, RetryPolicy()),
                rng=self.rng,
            )
            if retry_at is not None:
                return AttemptRecord(
                    outcome.kind,
                    outcome.status_code,
                    outcome.detail,
                    latency_ms,
                    DeliveryState.PENDING,
                    retry_at,
                )
            detail = f"gave up after {row.attempts + 1} attempts: {outcome.detail}"
            return AttemptRecord(
                outcome.kind, outcome.status_code, detail, latency_ms, DeliveryState.DEAD, None
            )
        return AttemptRecord(
            outcome.kind, outcome.status_code, outcome.detail, latency_ms, DeliveryState.DEAD, None
        )

    def _note_receiver(
        self, connection: sa.Connection, row: sa.Row, record: AttemptRecord, now_ns: int
    ) -> None:
        delivered = record.state is DeliveryState.DELIVERED
        gone = record.outcome == OutcomeKind.GONE
        if row.receiver in self.receivers:
            record_receiver_result(
                connection,
                row.receiver,
                now_ns=now_ns,
                success=delivered,
                disable_reason=f"destination gone: {record.detail}" if gone else None,
            )
        if gone:
            logger.error("receiver %r disabled: its destination is gone", row.receiver)
        if record.state is DeliveryState.DEAD:
            self._meta_alert(connection, row, record, now_ns)

    def _meta_alert(
        self, connection: sa.Connection, row: sa.Row, record: AttemptRecord, now_ns: int
    ) -> None:
        """Tell the fallback receiver that a notification could not be delivered."""
        fallback = self.fallback_receiver
        if fallback is None or fallback == row.receiver or row.group_key == META_GROUP_KEY:
            return
        labels = {"alertname": "NotificationUndeliverable", "receiver": row.receiver}
        meta = Notification(
            id=f"meta-{row.id}"[:100],
            receiver=fallback,
            group_key=META_GROUP_KEY,
            status=AlertStatus.FIRING,
            group_labels=labels,
            common_labels=labels | {"severity": "warning"},
            alerts=(
                Alert(
                    labels=labels | {"severity": "warning"},
                    annotations={
                        "title": f"A notification to {row.receiver} could not be delivered",
                        "summary": record.detail,
                        "notification_id": row.id,
                    },
                    starts_at_ns=now_ns,
                ),
            ),
            created_at_ns=now_ns,
        )
        enqueue_notifications(connection, [outbox_row(meta)])

    def _round(self) -> float:
        """One claimed batch; go on at once while there is more, else sleep."""
        return 0.0 if self.run_once() >= self.batch_size else self.interval_s

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        self._thread.stop(timeout)


def outbox_row(notification: Notification) -> dict:
    """The outbox row of a notification (see `inferloop.store.outbox.enqueue_notifications`)."""
    return {
        "id": notification.id,
        "receiver": notification.receiver,
        "group_key": notification.group_key,
        "status": str(notification.status),
        "body": notification_to_dict(notification),
        "created_at_ns": notification.created_at_ns,
    }


def _dead(detail: str) -> AttemptRecord:
    return AttemptRecord("undeliverable", None, detail, 0.0, DeliveryState.DEAD, None)
