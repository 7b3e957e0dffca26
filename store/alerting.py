"""Alerting tables: the notification outbox, its delivery log, receiver health, silences,
rules added through the API, and the state of each alert group.

Everything the dispatcher knows lives here, not in memory, so a dispatcher killed
at any point resumes where it stopped and two dispatchers can share the work:
a notification row is claimed with a lease before it is sent and acknowledged
after, and its id is the idempotency key the receiver sees.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class AlertNotification(Base):
    """One message to one receiver: the unit of delivery (the transactional outbox)."""

    __tablename__ = "alert_notifications"

    id: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    receiver: Mapped[str] = mapped_column(sa.String(200))
    group_key: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(20))
    """firing | resolved: what the message says about its group."""
    body: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    """The notification itself (alerts, labels, evidence), as the receiver renders it."""
    state: Mapped[str] = mapped_column(sa.String(20))
    """pending → delivered, or dead (refused or out of retries), or disabled receiver."""
    created_at_ns: Mapped[int] = mapped_column(sa.BigInteger)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    next_attempt_ns: Mapped[int] = mapped_column(sa.BigInteger)
    lease_owner: Mapped[str | None] = mapped_column(sa.String(100))
    lease_expires_ns: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    delivered_at_ns: Mapped[int | None] = mapped_column(sa.BigInteger)

    __table_args__ = (
        sa.Index("ix_alert_notifications_state_next", "state", "next_attempt_ns"),
        sa.Index("ix_alert_notifications_receiver", "receiver"),
    )


class AlertDeliveryAttempt(Base):
    """The delivery log: one row per attempt, with what the receiver answered."""

    __tablename__ = "alert_delivery_attempts"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    notification_id: Mapped[str] = mapped_column(sa.String(100))
    receiver: Mapped[str] = mapped_column(sa.String(200))
    attempt: Mapped[int] = mapped_column(sa.Integer)
    at_ns: Mapped[int] = mapped_column(sa.BigInteger)
    outcome: Mapped[str] = mapped_column(sa.String(20))
    status_code: Mapped[int | None] = mapped_column(sa.Integer)
    detail: Mapped[str] = mapped_column(sa.Text, default="")
    latency_ms: Mapped[float] = mapped_column(sa.Float, default=0.0)
    next_attempt_ns: Mapped[int | None] = mapped_column(sa.BigInteger)

    __table_args__ = (sa.Index("ix_alert_delivery_attempts_notification", "notification_id"),)


class AlertReceiverHealth(Base):
    """Per receiver: last success and failure; disabled when its destination is gone."""

    __tablename__ = "alert_receivers"

    name: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    disabled: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    disabled_reason: Mapped[str | None] = mapped_column(sa.Text)
    last_success_ns: Mapped[int | None] = mapped_column(sa.BigInteger)
    last_failure_ns: Mapped[int | None] = mapped_column(sa.BigInteger)
    consecutive_failures: Mapped[int] = mapped_column(sa.Integer, default=0)


class AlertSilence(Base):
    """A silence: alerts matching all its matchers send nothing between start and end."""

    __tablename__ = "alert_silences"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    matchers: Mapped[list[str]] = mapped_column(sa.JSON)
    starts_at_ns: Mapped[int] = mapped_column(sa.BigInteger)
    ends_at_ns: Mapped[int] = mapped_column(sa.BigInteger)
    comment: Mapped[str] = mapped_column(sa.Text, default="")
    created_by: Mapped[str] = mapped_column(sa.String(200), default="")
    created_at_ns: Mapped[int] = mapped_column(sa.BigInteger)


class AlertGroupState(Base):
    """The routing core's state of one (route, group, receiver), and when it next wakes."""

    __tablename__ = "alert_group_states"

    key: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    next_wakeup_ns: Mapped[int | None] = mapped_column(sa.BigInteger)
    updated_at_ns: Mapped[int] = mapped_column(sa.BigInteger)

    __table_args__ = (sa.Index("ix_alert_group_states_next_wakeup", "next_wakeup_ns"),)


class AlertRule(Base):
    """A rule added through the API; evaluated before the config file's rules."""

    __tablename__ = "alert_rules"

    name: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    matchers: Mapped[list[str]] = mapped_column(sa.JSON)
    severity: Mapped[str | None] = mapped_column(sa.String(16))
    labels: Mapped[dict[str, str]] = mapped_column(sa.JSON)
    created_at_ns: Mapped[int] = mapped_column(sa.BigInteger)
    updated_at_ns: Mapped[int] = mapped_column(sa.BigInteger)
