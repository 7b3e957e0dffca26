"""Tables of the analysis side: pinned drift references, findings, and work leases.

The analyzer writes them; the API, the CLI and (soon) alerts read findings. Their
queries live beside them in the store (`findings`, `references`, `leases`); the values
of `kind`, `severity` and `status` are the strings of `inferloop.store.vocabulary`.
Times are Unix epoch nanoseconds (integers), like the ingest tables.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


class DriftReference(Base):
    """A pinned reference dataset (Parquet under the data dir) for a model [version].

    A NULL version applies to every version of the model that has no reference of its own.
    """

    __tablename__ = "drift_references"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(sa.String(200))
    version: Mapped[str | None] = mapped_column(sa.String(200))
    name: Mapped[str] = mapped_column(sa.String(200))
    path: Mapped[str] = mapped_column(sa.Text)
    rows: Mapped[int] = mapped_column(sa.BigInteger)
    column_kinds: Mapped[dict[str, str]] = mapped_column(sa.JSON)
    created_at_ns: Mapped[int] = mapped_column(sa.BigInteger)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)

    __table_args__ = (sa.Index("ix_drift_references_model_version", "model", "version"),)


class Finding(Base):
    """Something the analyzer found, with its evidence and lifecycle.

    ``fingerprint`` names the condition (model, version, kind, subject); while a
    finding with that fingerprint is pending or open, later runs update it instead of
    adding another. ``pending`` waits for confirmation by a second window; it becomes
    ``open``, then ``resolved`` once the condition has cleared; a pending one that
    clears is ``dismissed``.
    """

    __tablename__ = "findings"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(sa.String(64))
    model: Mapped[str] = mapped_column(sa.String(200))
    version: Mapped[str | None] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(64))
    subject: Mapped[str] = mapped_column(sa.String(400))
    severity: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[str] = mapped_column(sa.String(16))
    title: Mapped[str] = mapped_column(sa.Text)
    evidence: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    window_start_ns: Mapped[int] = mapped_column(sa.BigInteger)
    window_end_ns: Mapped[int] = mapped_column(sa.BigInteger)
    first_seen_ns: Mapped[int] = mapped_column(sa.BigInteger)
    last_seen_ns: Mapped[int] = mapped_column(sa.BigInteger)
    opened_at_ns: Mapped[int | None] = mapped_column(sa.BigInteger)
    resolved_at_ns: Mapped[int | None] = mapped_column(sa.BigInteger)
    occurrences: Mapped[int] = mapped_column(sa.Integer, default=1)
    report_path: Mapped[str | None] = mapped_column(sa.Text)

    __table_args__ = (
        sa.Index("ix_findings_fingerprint_status", "fingerprint", "status"),
        sa.Index("ix_findings_model_status", "model", "status"),
        sa.Index("ix_findings_last_seen_ns", "last_seen_ns"),
    )


class AnalyzerLease(Base):
    """Which analyzer worker holds a model, until when; and when it was last analysed.

    Workers take a model by updating its row only if the lease has expired (or is
    theirs), so two workers never analyse the same model at the same time.
    """

    __tablename__ = "analyzer_leases"

    model: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    owner: Mapped[str | None] = mapped_column(sa.String(100))
    expires_at_ns: Mapped[int] = mapped_column(sa.BigInteger)
    last_run_ns: Mapped[int | None] = mapped_column(sa.BigInteger)
