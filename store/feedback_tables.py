"""Feedback tables: the checks of each guarded rollout, and the outbox of the requests the
loop sends (retrain, redeploy, rollback), one row per request and destination."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class RolloutCheck(Base):
    """One check of a candidate against the live version: its statistics and decision."""

    __tablename__ = "rollout_checks"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(sa.String(200))
    environment: Mapped[str] = mapped_column(sa.String(200))
    candidate_version: Mapped[int] = mapped_column(sa.Integer)
    live_version: Mapped[int | None] = mapped_column(sa.Integer)
    check_number: Mapped[int] = mapped_column(sa.Integer)
    at_ns: Mapped[int] = mapped_column(sa.BigInteger)
    window_start_ns: Mapped[int] = mapped_column(sa.BigInteger)
    window_end_ns: Mapped[int] = mapped_column(sa.BigInteger)
    outcome: Mapped[str] = mapped_column(sa.String(20))
    """pass | fail | inconclusive"""
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    evidence: Mapped[dict[str, Any]] = mapped_column(sa.JSON)

    __table_args__ = (
        sa.UniqueConstraint(
            "model",
            "environment",
            "candidate_version",
            "check_number",
            name="uq_rollout_checks_candidate_check",
        ),
    )


class FeedbackRequest(Base):
    """A CloudEvent the loop sends to one destination; its id is the idempotency key."""

    __tablename__ = "feedback_requests"

    id: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    """The CloudEvent id: a hash of the decision, so a retry or a second worker makes the same."""
    destination: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(200))
    subject: Mapped[str] = mapped_column(sa.String(400))
    model: Mapped[str] = mapped_column(sa.String(200))
    event: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    """The whole CloudEvent (specversion, id, source, type, subject, time, data)."""
    state: Mapped[str] = mapped_column(sa.String(20))
    created_at_ns: Mapped[int] = mapped_column(sa.BigInteger)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    next_attempt_ns: Mapped[int] = mapped_column(sa.BigInteger)
    lease_owner: Mapped[str | None] = mapped_column(sa.String(100))
    lease_expires_ns: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    delivered_at_ns: Mapped[int | None] = mapped_column(sa.BigInteger)

    __table_args__ = (
        sa.Index("ix_feedback_requests_state_next", "state", "next_attempt_ns"),
        sa.Index("ix_feedback_requests_model", "model"),
    )
