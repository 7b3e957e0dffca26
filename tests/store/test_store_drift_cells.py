"""The drift table on both back ends: upserts by (model, window, version, kind, feature),
the paged read in key order, the hour rows kept beside the cells, and the heatmap's
buckets from either."""

from __future__ import annotations

import sqlalchemy as sa
from drift_cell_rows import drift_cell, drift_finding

from inferloop.store.drift_cells import (
    HOUR_NS,
    DriftCell,
    DriftCellHour,
    any_drift_cell,
    drift_cells,
    write_cells,
)
from inferloop.store.drift_heatmap import drift_heatmap
from inferloop.store.retention import prune_drift_cells

MIN = 60 * 1_000_000_000


def test_writing_a_window_again_overwrites_its_cells(migrated_engine):
    with migrated_engine.begin() as connection:
        write_cells(connection, [drift_cell(MIN, "age"), drift_cell(MIN, "income")])
        finding = drift_finding(connection)
        write_cells(
            connection,
            [drift_cell(MIN, "age", score=1e-9, drifted=True, alarmed=True, finding_id=finding)],
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
            [drift_cell(m * MIN, f) for m in (3, 1, 2) for f in ("income", "age")]
            + [drift_cell(MIN, "age", model="other")],
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
        finding = drift_finding(connection)
        write_cells(
            connection,
            [
                drift_cell(1 * MIN, "age"),
                drift_cell(
                    2 * MIN, "age", drifted=True, alarmed=True, finding_id=finding, score=1e-6
                ),
                drift_cell(3 * MIN, "age", drifted=True, score=0.01),
                drift_cell(5 * MIN, "age"),
                drift_cell(1 * MIN, "income"),
                drift_cell(9 * MIN, "income"),
            ],
        )
    with migrated_engine.connect() as connection:
        rows = drift_heatmap(connection, "fraud", start_ns=MIN, end_ns=7 * MIN, bucket_ns=4 * MIN)
    got = {(r.feature, r.bucket): r for r in rows}
    assert sorted(got) == [("age", 0), ("age", 1), ("income", 0)]
    age = got["age", 0]
    assert (age.windows, age.drifted_windows, age.alarmed_windows) == (3, 2, 1)
    assert age.finding_id == finding and age.finding_status == "pending"
    assert (
        age.last_end_ns == 3 * MIN and age.score == 0.01 and age.last_start_ns == 3 * MIN - HOUR_NS
    )
    assert got["age", 1].finding_id is None and got["income", 0].windows == 1


def _hours(engine) -> dict[tuple[int, str], tuple[int, int, int, int, int | None]]:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(DriftCellHour)).all()
    return {
        (r.hour_start_ns // HOUR_NS, r.feature): (
            r.windows,
            r.drifted_windows,
            r.alarmed_windows,
            r.last_end_ns // MIN,
            r.finding_id,
        )
        for r in rows
    }


def test_the_hour_rows_count_each_window_once_however_often_it_is_written(migrated_engine):
    with migrated_engine.begin() as connection:
        finding = drift_finding(connection)
        first = [drift_cell(m * MIN, "age") for m in (1, 30, 59, 60, 61)]
        write_cells(connection, first)
        write_cells(connection, first[:2])
        write_cells(
            connection,
            [drift_cell(30 * MIN, "age", drifted=True, alarmed=True, finding_id=finding)],
        )
    assert _hours(migrated_engine) == {
        (0, "age"): (3, 1, 1, 59, finding),
        (1, "age"): (2, 0, 0, 61, None),
    }


def test_whole_hour_buckets_read_the_hour_rows_and_agree_with_the_cells(migrated_engine):
    with migrated_engine.begin() as connection:
        finding = drift_finding(connection)
        write_cells(
            connection,
            [
                drift_cell(m * 5 * MIN, f, drifted=m == 13, score=0.01 if m == 13 else 0.4)
                for m in range(1, 72)
                for f in ("age", "income")
            ]
            + [drift_cell(65 * MIN, "age", drifted=True, alarmed=True, finding_id=finding)],
        )
    with migrated_engine.connect() as connection:
        hourly = drift_heatmap(
            connection, "fraud", start_ns=0, end_ns=6 * HOUR_NS, bucket_ns=2 * HOUR_NS
        )
        minutes = drift_heatmap(
            connection, "fraud", start_ns=MIN, end_ns=6 * HOUR_NS, bucket_ns=2 * HOUR_NS
        )
    got = {(c.feature, c.bucket): c for c in hourly}
    assert sorted(got) == [
        ("age", 0),
        ("age", 1),
        ("age", 2),
        ("income", 0),
        ("income", 1),
        ("income", 2),
    ]
    age = got["age", 0]
    assert (age.windows, age.drifted_windows, age.alarmed_windows) == (23, 1, 1)
    assert age.finding_id == finding and age.finding_status == "pending"
    assert age.last_end_ns == 115 * MIN and age.score == 0.4
    assert got["age", 2].windows == 24 and got["income", 2].finding_id is None
    assert sum(c.windows for c in hourly) == sum(c.windows for c in minutes) == 142


def test_retention_prunes_whole_old_hours_of_cells_and_keeps_the_hour_rows(migrated_engine):
    now_ns = 40 * 86_400 * 10**9
    old_hour = now_ns - 20 * 86_400 * 10**9 // HOUR_NS * HOUR_NS
    ends = [old_hour + k * 10 * MIN for k in range(1, 7)] + [now_ns - k * MIN for k in range(3)]
    with migrated_engine.begin() as connection:
        write_cells(connection, [drift_cell(end, f) for end in ends for f in ("age", "income")])
    before = _hours(migrated_engine)

    deleted = prune_drift_cells(migrated_engine, older_than_days=14, now_ns=now_ns)

    with migrated_engine.connect() as connection:
        left = connection.execute(sa.select(DriftCell.window_end_ns)).scalars().all()
    assert deleted == 12 and sorted(set(left)) == sorted(ends[6:])
    assert _hours(migrated_engine) == before  # the hour rows of pruned cells stay
    assert prune_drift_cells(migrated_engine, older_than_days=14, now_ns=now_ns) == 0
