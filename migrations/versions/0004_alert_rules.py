"""Alert rules managed through the API.

Revision ID: 0004_alert_rules
Revises: 0003_alerting
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_alert_rules"
down_revision: str | None = "0003_alerting"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_rules",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("matchers", sa.JSON(), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=True),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("created_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_alert_rules")),
    )


def downgrade() -> None:
    op.drop_table("alert_rules")
