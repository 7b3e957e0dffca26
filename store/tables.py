"""Tables written by the ingest path: events, labels, rollups, delivery, dead letters.

Times are Unix epoch integers (nanoseconds for events, seconds for minute
buckets) so both back ends compare and index them the same way and the hot
path never builds datetime objects.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base


class Event(Base):
    """One inference call, stored once (``event_id`` is the idempotency key)."""

    __tablename__ = "events"

    event_id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    emitter_id: Mapped[str] = mapped_column(sa.String(64))
    seq: Mapped[int] = mapped_column(sa.BigInteger)
    model: Mapped[str] = mapped_column(sa.String(200))
    version: Mapped[str] = mapped_column(sa.String(200))
    environment: Mapped[str] = mapped_column(sa.String(200))
    start_time_ns: Mapped[int] = mapped_column(sa.BigInteger)
    latency_ns: Mapped[int] = mapped_column(sa.BigInteger)
    device_time_ns: Mapped[int | None] = mapped_column(sa.BigInteger)
    status: Mapped[str] = mapped_column(sa.String(8))
    error_type: Mapped[str | None] = mapped_column(sa.String(200))
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    batch_size: Mapped[int] = mapped_column(sa.Integer)
    device: Mapped[str] = mapped_column(sa.String(64))
    inputs: Mapped[Any | None] = mapped_column(sa.JSON)
    outputs: Mapped[Any | None] = mapped_column(sa.JSON)
    prediction_id: Mapped[str] = mapped_column(sa.String(200))
    tags: Mapped[dict[str, str]] = mapped_column(sa.JSON)
    received_at_ns: Mapped[int] = mapped_column(sa.BigInteger)

    __table_args__ = (
        sa.Index("ix_events_model_version_start", "model", "version", "start_time_ns"),
        # Looking a prediction up by id (a label arriving days later, the feedback
        # loop) must not scan the table. On PostgreSQL a hash index: only equality
        # lookups are needed, and ids arrive in emitter order, not key order. In
        # bench/collector_ingest.py a B-tree held ingest to 49-54k events/s, the
        # hash index to 63k, no index 74-77k.
        sa.Index("ix_events_prediction_id", "prediction_id", postgresql_using="hash"),
        # No index on start_time_ns alone: retention prunes series by series.
    )


class Label(Base):
    """Ground truth for one prediction, joined to events by ``prediction_id``."""

    __tablename__ = "labels"

    event_id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    emitter_id: Mapped[str] = mapped_column(sa.String(64))
    seq: Mapped[int] = mapped_column(sa.BigInteger)
    prediction_id: Mapped[str] = mapped_column(sa.String(200))
    model: Mapped[str] = mapped_column(sa.String(200))
    label: Mapped[Any | None] = mapped_column(sa.JSON)
    time_ns: Mapped[int] = mapped_column(sa.BigInteger)
    received_at_ns: Mapped[int] = mapped_column(sa.BigInteger)

    __table_args__ = (
        sa.Index("ix_labels_prediction_id", "prediction_id"),
        sa.Index("ix_labels_model_time", "model", "time_ns"),
    )


class _RollupFigures:
    """The columns every rollup grain shares.

    ``histogram`` is a log-bucketed latency sketch (see ``inferloop.store.sketch``):
    merging two rows is adding their bucket counts. ``p50_ns``/``p95_ns``/``p99_ns`` are
    that histogram's percentiles, recomputed whenever it changes, so a chart whose
    buckets are rows reads them without parsing a histogram. GPU time is summed, counted
    (events that measured it) and maxed: its mean and maximum, not its percentiles.
    """

    model: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    version: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    count: Mapped[int] = mapped_column(sa.BigInteger)
    errors: Mapped[int] = mapped_column(sa.BigInteger)
    latency_sum_ns: Mapped[int] = mapped_column(sa.BigInteger)
    latency_max_ns: Mapped[int] = mapped_column(sa.BigInteger)
    histogram: Mapped[dict[str, int]] = mapped_column(sa.JSON)
    p50_ns: Mapped[float | None] = mapped_column(sa.Double)
    p95_ns: Mapped[float | None] = mapped_column(sa.Double)
    p99_ns: Mapped[float | None] = mapped_column(sa.Double)
    device_count: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    device_time_sum_ns: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    device_time_max_ns: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")


class MinuteRollup(_RollupFigures, Base):
    """Per-minute aggregates per model/version; survives raw-event retention."""

    __tablename__ = "minute_rollups"

    minute_start_s: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)

    __table_args__ = (
        sa.PrimaryKeyConstraint("model", "version", "minute_start_s"),
        sa.Index("ix_minute_rollups_minute_start_s", "minute_start_s"),
    )


class HourRollup(_RollupFigures, Base):
    """The minutes of each hour merged, written with them: what long ranges read."""

    __tablename__ = "hour_rollups"

    hour_start_s: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)

    __table_args__ = (
        sa.PrimaryKeyConstraint("model", "version", "hour_start_s"),
        sa.Index("ix_hour_rollups_hour_start_s", "hour_start_s"),
    )


class DeliveryRange(Base):
    """A run of contiguous sequence numbers received from one emitter for one model.

    Gaps between an emitter's ranges are events it sent that never arrived.
    """

    __tablename__ = "delivery_ranges"

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    emitter_id: Mapped[str] = mapped_column(sa.String(64))
    model: Mapped[str] = mapped_column(sa.String(200))
    seq_start: Mapped[int] = mapped_column(sa.BigInteger)
    seq_end: Mapped[int] = mapped_column(sa.BigInteger)
    first_time_ns: Mapped[int] = mapped_column(sa.BigInteger)
    last_time_ns: Mapped[int] = mapped_column(sa.BigInteger)

    __table_args__ = (
        sa.Index("ix_delivery_ranges_emitter_end", "emitter_id", "seq_end"),
        sa.Index("ix_delivery_ranges_model_last_time", "model", "last_time_ns"),
    )


class SdkDrops(Base):
    """Events the SDK reported dropping before sending, per model, minute and reason."""

    __tablename__ = "sdk_drops"

    model: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    minute_start_s: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    reason: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    count: Mapped[int] = mapped_column(sa.BigInteger)


class DeadLetter(Base):
    """Input that could not be decoded or validated, kept with its reason and bytes."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    received_at_ns: Mapped[int] = mapped_column(sa.BigInteger)
    source: Mapped[str] = mapped_column(sa.String(16))
    topic: Mapped[str | None] = mapped_column(sa.String(255))
    partition: Mapped[int | None] = mapped_column(sa.Integer)
    offset: Mapped[int | None] = mapped_column(sa.BigInteger)
    event_index: Mapped[int] = mapped_column(sa.Integer)
    """Position of the rejected event in its batch; -1 when the whole message was refused."""
    reason: Mapped[str] = mapped_column(sa.Text)
    raw: Mapped[bytes] = mapped_column(sa.LargeBinary)
    raw_size: Mapped[int] = mapped_column(sa.BigInteger)

    __table_args__ = (
        sa.Index("ix_dead_letters_received_at_ns", "received_at_ns"),
        # A redelivered Kafka message must not be dead-lettered twice. HTTP input
        # has NULL topic/partition/offset, which never conflicts.
        sa.UniqueConstraint("topic", "partition", "offset", "event_index"),
    )
