"""Drift cells: every (model, version, feature, window) the analyzer tested, drifted or not,
and their counts per hour for long ranges.

Revision ID: 0008_drift_cells
Revises: 0007_api_keys
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_drift_cells"
down_revision: str | None = "0007_api_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "drift_cells",
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("window_end_ns", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("feature", sa.String(length=400), nullable=False),
        sa.Column("window_start_ns", sa.BigInteger(), nullable=False),
        sa.Column("column_kind", sa.String(length=16), nullable=True),
        sa.Column("test", sa.String(length=64), nullable=False),
        sa.Column("statistic", sa.Float(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("score_kind", sa.String(length=16), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("effect_name", sa.String(length=32), nullable=True),
        sa.Column("effect", sa.Float(), nullable=True),
        sa.Column("drifted", sa.Boolean(), nullable=False),
        sa.Column("alarmed", sa.Boolean(), nullable=False),
        sa.Column("reference_rows", sa.BigInteger(), nullable=True),
        sa.Column("current_rows", sa.BigInteger(), nullable=True),
        sa.Column("baseline", sa.JSON(), nullable=False),
        sa.Column("finding_id", sa.BigInteger(), nullable=True),
        sa.Column("analyzed_at_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "model", "window_end_ns", "version", "kind", "feature", name=op.f("pk_drift_cells")
        ),
    )
    op.create_table(
        "drift_cell_hours",
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("hour_start_ns", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("feature", sa.String(length=400), nullable=False),
        sa.Column("windows", sa.BigInteger(), nullable=False),
        sa.Column("drifted_windows", sa.BigInteger(), nullable=False),
        sa.Column("alarmed_windows", sa.BigInteger(), nullable=False),
        sa.Column("last_end_ns", sa.BigInteger(), nullable=False),
        sa.Column("finding_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint(
            "model", "hour_start_ns", "version", "kind", "feature", name=op.f("pk_drift_cell_hours")
        ),
    )


def downgrade() -> None:
    op.drop_table("drift_cell_hours")
    op.drop_table("drift_cells")
