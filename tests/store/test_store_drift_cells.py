"""The drift table on both back ends: upserts by (model, window, version, kind, feature),
the paged read in key order, and the heatmap's buckets."""

from __future__ import annotations

import sqlalchemy as sa

from inferloop.store.drift_cells import (
    CELL_COLUMNS,
    DriftCell,
    any_drift_cell,
    drift_cells,
    drift_heatmap,
    write_cells,
)
from inferloop.store.findings import insert_finding

MIN = 60 * 1_000_000_000


def _cell(end_ns: int, feature: str, **values) -> dict:
    cell = {
        "model": "fraud",
        "window_end_ns": end_ns,
        "version": "v1",
        "kind": "data_drift",
        "feature": feature,
        "window_start_ns": end_ns - 60 * MIN,
        "column_kind": "num",
        "test": "ks",
        "statistic": 0.01,
        "score": 0.5,
        "score_kind": "p_value",
        "threshold": 0.05,
        "effect_name": "wasserstein",
        "effect": 0.01,
        "drifted": False,
        "alarmed": False,
        "reference_rows": 500,
        "current_rows": 1200,
        "baseline": {"type": "first_events"},
        "finding_id": None,
        "analyzed_at_ns": end_ns,
    }
    assert set(cell) == set(CELL_COLUMNS)
    return cell | values


def _finding(connection, subject: str) -> int:
    return insert_finding(
        connection,
        {
            "fingerprint": subject,
            "model": "fraud",
            "version": "v1",
            "kind": "data_drift",
            "subject": subject,
            "severity": "warning",
            "status": "pending",
            "title": f"{subject} drifted",
            "evidence": {},
            "window_start_ns": 0,
            "window_end_ns": 0,
            "first_seen_ns": 0,
            "last_seen_ns": 0,
            "occurrences": 1,
        },
    )


def test_writing_a_window_again_overwrites_its_cells(migrated_engine):
    with migrated_engine.begin() as connection:
        write_cells(connection, [_cell(MIN, "age"), _cell(MIN, "income")])
        finding = _finding(connection, "age")
        write_cells(
            connection,
            [_cell(MIN, "age", score=1e-9, drifted=True, alarmed=True, finding_id=finding)],
        )
    with migrated_engine.connect() as connection:
        count = connection.scalar(sa.select(sa.func.count()).select_from(DriftCell))
        cells = drift_cells(connection, "fraud", start_ns=0, end_ns=2 * MIN)
    assert count == 2
    age = next(c for c in cells if c.feature == "age")
    assert age.drifted and age.finding_id == finding and age.score == 1e-9
    assert age.finding_status == "pending" and age.baseline == {"type": "first_events"}
    assert write_cells(connection, []) == 0


def test_cells_read_in_key_order_a_page_at_a_time(migrated_engine):
    with migrated_engine.begin() as connection:
        write_cells(
            connection,
            [_cell(m * MIN, f) for m in (3, 1, 2) for f in ("income", "age")]
            + [_cell(MIN, "age", model="other")],
        )
    with migrated_engine.connect() as connection:
        first = drift_cells(connection, "fraud", start_ns=MIN, end_ns=3 * MIN, limit=3)
        last = first[-1]
        key = (last.window_end_ns, last.version, last.kind, last.feature)
        rest = drift_cells(connection, "fraud", start_ns=MIN, end_ns=3 * MIN, after=key)
        known = any_drift_cell(connection, "fraud"), any_drift_cell(connection, "nope")
    keys = [(c.window_end_ns // MIN, c.feature) for c in first + rest]
    assert keys == [(1, "age"), (1, "income"), (2, "age"), (2, "income")]
    assert known == (True, False)


def test_the_heatmap_merges_windows_into_buckets_and_keeps_the_latest_finding(migrated_engine):
    with migrated_engine.begin() as connection:
        finding = _finding(connection, "age")
        write_cells(
            connection,
            [
                _cell(1 * MIN, "age"),
                _cell(2 * MIN, "age", drifted=True, alarmed=True, finding_id=finding, score=1e-6),
                _cell(3 * MIN, "age", drifted=True, score=0.01),
                _cell(5 * MIN, "age"),
                _cell(1 * MIN, "income"),
                _cell(9 * MIN, "income"),
            ],
        )
    with migrated_engine.connect() as connection:
        rows = drift_heatmap(connection, "fraud", start_ns=MIN, end_ns=7 * MIN, bucket_ns=4 * MIN)
    got = {(r.feature, r.bucket): r for r in rows}
    assert sorted(got) == [("age", 0), ("age", 1), ("income", 0)]
    age = got["age", 0]
    assert (age.windows, age.drifted_windows, age.alarmed_windows) == (3, 2, 1)
    assert age.finding_id == finding and age.finding_status == "pending"
    assert age.last_end_ns == 3 * MIN and age.score == 0.01 and age.drifted and not age.alarmed
    assert got["age", 1].finding_id is None and got["income", 0].windows == 1
