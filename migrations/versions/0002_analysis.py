"""Analyzer tables: pinned drift references, findings, analyzer work leases.

Revision ID: 0002_analysis
Revises: 0001_events
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_analysis"
down_revision: str | None = "0001_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "analyzer_leases",
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=True),
        sa.Column("expires_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("last_run_ns", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("model", name=op.f("pk_analyzer_leases")),
    )
    op.create_table(
        "drift_references",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("version", sa.String(length=200), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("column_kinds", sa.JSON(), nullable=False),
        sa.Column("created_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drift_references")),
    )
    op.create_index(
        "ix_drift_references_model_version", "drift_references", ["model", "version"], unique=False
    )
    op.create_table(
        "findings",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("version", sa.String(length=200), nullable=True),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=400), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("window_start_ns", sa.BigInteger(), nullable=False),
        sa.Column("window_end_ns", sa.BigInteger(), nullable=False),
        sa.Column("first_seen_ns", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_ns", sa.BigInteger(), nullable=False),
        sa.Column("opened_at_ns", sa.BigInteger(), nullable=True),
        sa.Column("resolved_at_ns", sa.BigInteger(), nullable=True),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.Column("report_path", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_findings")),
    )
    op.create_index(
        "ix_findings_fingerprint_status", "findings", ["fingerprint", "status"], unique=False
    )
    op.create_index("ix_findings_last_seen_ns", "findings", ["last_seen_ns"], unique=False)
    op.create_index("ix_findings_model_status", "findings", ["model", "status"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_findings_model_status", table_name="findings")
    op.drop_index("ix_findings_last_seen_ns", table_name="findings")
    op.drop_index("ix_findings_fingerprint_status", table_name="findings")
    op.drop_table("findings")
    op.drop_index("ix_drift_references_model_version", table_name="drift_references")
    op.drop_table("drift_references")
    op.drop_table("analyzer_leases")
