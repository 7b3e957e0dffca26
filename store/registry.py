"""Model registry tables: a per-model version counter, the registered versions, each
version's state per environment, and the append-only history of every move.

The history is the source of truth for "which version served this deployment at
time T": rows are only ever inserted, so a question about the past is answered
from what was written then, not from where the states point now (MLflow's aliases
forget where they pointed; mlflow#2169). The counter row is what concurrent
writers queue on, so version numbers are assigned inside the writer's transaction.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class RegistryModel(Base):
    """One row per model: the last version number given out, and the lock of its moves."""

    __tablename__ = "registry_models"

    model: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    last_version: Mapped[int] = mapped_column(sa.Integer)
    created_at_ns: Mapped[int] = mapped_column(sa.BigInteger)


class RegistryVersion(Base):
    """A registered version: what was built, from what data, by whom. Never changed."""

    __tablename__ = "registry_versions"

    model: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    version: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    artifact_uri: Mapped[str] = mapped_column(sa.Text)
    metrics: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    # `metadata` is the declarative base's own attribute, hence the trailing underscore.
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", sa.JSON)
    source_snapshot_uri: Mapped[str | None] = mapped_column(sa.Text)
    source_snapshot_hash: Mapped[str | None] = mapped_column(sa.String(128))
    registered_by: Mapped[str] = mapped_column(sa.String(200))
    registered_at_ns: Mapped[int] = mapped_column(sa.BigInteger)


class RegistryVersionState(Base):
    """A version's current state in one environment; no row means it is still a candidate."""

    __tablename__ = "registry_version_states"

    model: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    environment: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    version: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    state: Mapped[str] = mapped_column(sa.String(20))
    """candidate | canary | live | retired | rolled_back."""
    previous_live: Mapped[int | None] = mapped_column(sa.Integer)
    """The version this one retired when it went live: restored if this one is rolled back."""
    updated_at_ns: Mapped[int] = mapped_column(sa.BigInteger)

    __table_args__ = (
        sa.Index(
            "ix_registry_version_states_model_environment_state", "model", "environment", "state"
        ),
    )


class RegistryHistory(Base):
    """One move of one version: appended, never updated. Registration is the first row."""

    __tablename__ = "registry_history"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(sa.String(200))
    version: Mapped[int] = mapped_column(sa.Integer)
    environment: Mapped[str | None] = mapped_column(sa.String(100))
    """None for the registration, which puts the version in no environment yet."""
    from_state: Mapped[str | None] = mapped_column(sa.String(20))
    to_state: Mapped[str] = mapped_column(sa.String(20))
    actor: Mapped[str] = mapped_column(sa.String(200))
    reason: Mapped[str] = mapped_column(sa.Text)
    evidence: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    at_ns: Mapped[int] = mapped_column(sa.BigInteger)

    __table_args__ = (
        sa.Index("ix_registry_history_model_environment_at_ns", "model", "environment", "at_ns"),
        sa.Index("ix_registry_history_model_version", "model", "version"),
    )
