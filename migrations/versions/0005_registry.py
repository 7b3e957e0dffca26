"""Model registry: the per-model version counter, versions, their states per environment,
and the append-only history of every move.

Revision ID: 0005_registry
Revises: 0004_alert_rules
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_registry"
down_revision: str | None = "0004_alert_rules"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "registry_history",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("environment", sa.String(length=100), nullable=True),
        sa.Column("from_state", sa.String(length=20), nullable=True),
        sa.Column("to_state", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("at_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_history")),
    )
    with op.batch_alter_table("registry_history", schema=None) as batch_op:
        batch_op.create_index(
            "ix_registry_history_model_environment_at_ns",
            ["model", "environment", "at_ns"],
            unique=False,
        )
        batch_op.create_index(
            "ix_registry_history_model_version", ["model", "version"], unique=False
        )

    op.create_table(
        "registry_models",
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("last_version", sa.Integer(), nullable=False),
        sa.Column("created_at_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("model", name=op.f("pk_registry_models")),
    )
    op.create_table(
        "registry_version_states",
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("environment", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("previous_live", sa.Integer(), nullable=True),
        sa.Column("updated_at_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "model", "environment", "version", name=op.f("pk_registry_version_states")
        ),
    )
    with op.batch_alter_table("registry_version_states", schema=None) as batch_op:
        batch_op.create_index(
            "ix_registry_version_states_model_environment_state",
            ["model", "environment", "state"],
            unique=False,
        )

    op.create_table(
        "registry_versions",
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("artifact_uri", sa.Text(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("source_snapshot_uri", sa.Text(), nullable=True),
        sa.Column("source_snapshot_hash", sa.String(length=128), nullable=True),
        sa.Column("registered_by", sa.String(length=200), nullable=False),
        sa.Column("registered_at_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("model", "version", name=op.f("pk_registry_versions")),
    )


def downgrade() -> None:
    op.drop_table("registry_versions")
    with op.batch_alter_table("registry_version_states", schema=None) as batch_op:
        batch_op.drop_index("ix_registry_version_states_model_environment_state")

    op.drop_table("registry_version_states")
    op.drop_table("registry_models")
    with op.batch_alter_table("registry_history", schema=None) as batch_op:
        batch_op.drop_index("ix_registry_history_model_version")
        batch_op.drop_index("ix_registry_history_model_environment_at_ns")

    op.drop_table("registry_history")
