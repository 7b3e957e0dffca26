"""Queries on the findings table: what the analyzer writes and the API, CLI and alerts read.

The lifecycle rules (when pending becomes open, what resolves) belong to the analyzer;
this module only reads and writes rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from .analysis import Finding
from .vocabulary import ACTIVE_STATUSES, FindingStatus

_FINDINGS = Finding.__table__


def active_findings(connection: sa.Connection, model: str) -> dict[str, sa.Row]:
    """The model's pending and open findings, by fingerprint."""
    query = sa.select(_FINDINGS).where(
        _FINDINGS.c.model == model, _FINDINGS.c.status.in_(ACTIVE_STATUSES)
    )
    return {row.fingerprint: row for row in connection.execute(query)}


def insert_finding(connection: sa.Connection, values: Mapping[str, Any]) -> int:
    """Add a finding (`values` are column values); return its id."""
    return connection.execute(
        sa.insert(_FINDINGS).returning(_FINDINGS.c.id), dict(values)
    ).scalar_one()


def update_finding(connection: sa.Connection, finding_id: int, values: Mapping[str, Any]) -> None:
    """Set column values of one finding."""
    connection.execute(sa.update(_FINDINGS).where(_FINDINGS.c.id == finding_id).values(values))


def list_findings(
    connection: sa.Connection,
    *,
    model: str | None = None,
    statuses: Sequence[FindingStatus | str] = ACTIVE_STATUSES,
    after_id: int | None = None,
    limit: int | None = None,
) -> list[sa.Row]:
    """Findings with one of `statuses` (default: pending and open), oldest first; a page
    of `limit` after the finding `after_id` when given."""
    query = sa.select(_FINDINGS).where(_FINDINGS.c.status.in_(statuses)).order_by(_FINDINGS.c.id)
    if model is not None:
        query = query.where(_FINDINGS.c.model == model)
    if after_id is not None:
        query = query.where(_FINDINGS.c.id > after_id)
    if limit is not None:
        query = query.limit(limit)
    return list(connection.execute(query))


def set_report_path(connection: sa.Connection, finding_id: int, path: str) -> None:
    """Record where the finding's rendered report lives."""
    update_finding(connection, finding_id, {"report_path": path})


def finding_report_path(connection: sa.Connection, finding_id: int) -> str | None:
    """The stored Evidently HTML of a finding, for the dashboard route to serve."""
    return connection.scalar(sa.select(_FINDINGS.c.report_path).where(_FINDINGS.c.id == finding_id))


def findings_by_id(connection: sa.Connection, ids: Sequence[int]) -> dict[int, sa.Row]:
    """The findings with these ids (those that exist), by id."""
    if not ids:
        return {}
    query = sa.select(_FINDINGS).where(_FINDINGS.c.id.in_(list(ids)))
    return {row.id: row for row in connection.execute(query)}
