"""Rows of the drift table for tests: a cell (or a drift finding for cells to link to) with
defaults for every column a test does not name."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from inferloop.store.drift_cells import CELL_COLUMNS
from inferloop.store.findings import insert_finding

HOUR_NS = 3600 * 1_000_000_000


def drift_cell(end_ns: int, feature: str, **values: Any) -> dict[str, Any]:
    """A calm K-S test of `feature` in fraud v1's hour-long window ending at `end_ns`."""
    cell = {
        "model": "fraud",
        "window_end_ns": end_ns,
        "version": "v1",
        "kind": "data_drift",
        "feature": feature,
        "window_start_ns": end_ns - HOUR_NS,
        "column_kind": "num",
        "test": "ks",
        "statistic": 0.02,
        "score": 0.4,
        "score_kind": "p_value",
        "threshold": 0.05,
        "effect_name": "wasserstein",
        "effect": 0.01,
        "drifted": False,
        "alarmed": False,
        "reference_rows": 500,
        "current_rows": 1000,
        "baseline": {"type": "first_events"},
        "finding_id": None,
        "analyzed_at_ns": end_ns,
    } | values
    assert set(cell) == set(CELL_COLUMNS), sorted(set(cell) ^ set(CELL_COLUMNS))
    return cell


def drift_finding(
    connection: sa.Connection,
    subject: str = "age",
    *,
    status: str = "pending",
    report_path: str | None = None,
) -> int:
    """A data-drift finding of fraud v1 about `subject`; its id."""
    return insert_finding(
        connection,
        {
            "fingerprint": subject,
            "model": "fraud",
            "version": "v1",
            "kind": "data_drift",
            "subject": subject,
            "severity": "warning",
            "status": status,
            "title": f"{subject} drifted",
            "evidence": {},
            "window_start_ns": 0,
            "window_end_ns": 0,
            "first_seen_ns": 0,
            "last_seen_ns": 0,
            "occurrences": 1,
            "report_path": report_path,
        },
    )
