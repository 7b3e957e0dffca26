"""Events, labels, per-minute rollups, delivery ranges, SDK drops, dead letters.

Revision ID: 0001_events
Revises:
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_events"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("received_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("topic", sa.String(length=255), nullable=True),
        sa.Column("partition", sa.Integer(), nullable=True),
        sa.Column("offset", sa.BigInteger(), nullable=True),
        sa.Column("event_index", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("raw_size", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
        sa.UniqueConstraint(
            "topic",
            "partition",
            "offset",
            "event_index",
            name=op.f("uq_dead_letters_topic_partition_offset_event_index"),
        ),
    )
    op.create_index(
        "ix_dead_letters_received_at_ns", "dead_letters", ["received_at_ns"], unique=False
    )

    op.create_table(
        "delivery_ranges",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("emitter_id", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("seq_start", sa.BigInteger(), nullable=False),
        sa.Column("seq_end", sa.BigInteger(), nullable=False),
        sa.Column("first_time_ns", sa.BigInteger(), nullable=False),
        sa.Column("last_time_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_ranges")),
    )
    op.create_index(
        "ix_delivery_ranges_emitter_end", "delivery_ranges", ["emitter_id", "seq_end"], unique=False
    )
    op.create_index(
        "ix_delivery_ranges_model_last_time",
        "delivery_ranges",
        ["model", "last_time_ns"],
        unique=False,
    )

    op.create_table(
        "events",
        sa.Column("event_id", sa.String(length=32), nullable=False),
        sa.Column("emitter_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("version", sa.String(length=200), nullable=False),
        sa.Column("environment", sa.String(length=200), nullable=False),
        sa.Column("start_time_ns", sa.BigInteger(), nullable=False),
        sa.Column("latency_ns", sa.BigInteger(), nullable=False),
        sa.Column("device_time_ns", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("error_type", sa.String(length=200), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("batch_size", sa.Integer(), nullable=False),
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=True),
        sa.Column("outputs", sa.JSON(), nullable=True),
        sa.Column("prediction_id", sa.String(length=200), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("received_at_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_events")),
    )
    op.create_index(
        "ix_events_model_version_start",
        "events",
        ["model", "version", "start_time_ns"],
        unique=False,
    )
    op.create_index(
        "ix_events_prediction_id",
        "events",
        ["prediction_id"],
        unique=False,
        postgresql_using="hash",
    )

    op.create_table(
        "labels",
        sa.Column("event_id", sa.String(length=32), nullable=False),
        sa.Column("emitter_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("prediction_id", sa.String(length=200), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("label", sa.JSON(), nullable=True),
        sa.Column("time_ns", sa.BigInteger(), nullable=False),
        sa.Column("received_at_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_labels")),
    )
    op.create_index("ix_labels_model_time", "labels", ["model", "time_ns"], unique=False)
    op.create_index("ix_labels_prediction_id", "labels", ["prediction_id"], unique=False)

    op.create_table(
        "minute_rollups",
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("version", sa.String(length=200), nullable=False),
        sa.Column("minute_start_s", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.BigInteger(), nullable=False),
        sa.Column("latency_sum_ns", sa.BigInteger(), nullable=False),
        sa.Column("latency_max_ns", sa.BigInteger(), nullable=False),
        sa.Column("histogram", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint(
            "model", "version", "minute_start_s", name=op.f("pk_minute_rollups")
        ),
    )
    op.create_index(
        "ix_minute_rollups_minute_start_s", "minute_rollups", ["minute_start_s"], unique=False
    )

    op.create_table(
        "sdk_drops",
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("minute_start_s", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=100), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("model", "minute_start_s", "reason", name=op.f("pk_sdk_drops")),
    )


def downgrade() -> None:
    op.drop_table("sdk_drops")
    op.drop_index("ix_minute_rollups_minute_start_s", table_name="minute_rollups")

    op.drop_table("minute_rollups")
    op.drop_index("ix_labels_prediction_id", table_name="labels")
    op.drop_index("ix_labels_model_time", table_name="labels")

    op.drop_table("labels")
    op.drop_index("ix_events_prediction_id", table_name="events")
    op.drop_index("ix_events_model_version_start", table_name="events")

    op.drop_table("events")
    op.drop_index("ix_delivery_ranges_model_last_time", table_name="delivery_ranges")
    op.drop_index("ix_delivery_ranges_emitter_end", table_name="delivery_ranges")

    op.drop_table("delivery_ranges")
    op.drop_index("ix_dead_letters_received_at_ns", table_name="dead_letters")

    op.drop_table("dead_letters")
