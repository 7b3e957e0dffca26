"""The heatmap's read of the drift table: a model's tests over a range, in buckets.

Three indexed reads, none of which scans more than the range: the counts per (bucket,
version, kind, feature), from the hour table when the buckets are whole hours and from the
cells otherwise; the latest cell of each bucket, by key; and the findings they name, by id.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from .drift_cells import HOUR_NS, DriftCell, DriftCellHour, window_counts
from .findings import findings_by_id

_CELLS = DriftCell.__table__
_HOURS = DriftCellHour.__table__


@dataclass(frozen=True, slots=True)
class HeatmapCell:
    """One feature in one bucket: its counts, its latest test, and the latest finding."""

    bucket: int
    version: str
    kind: str
    feature: str
    windows: int
    drifted_windows: int
    alarmed_windows: int
    last_end_ns: int
    last_start_ns: int
    test: str
    score: float | None
    score_kind: str
    threshold: float | None
    finding_id: int | None
    finding_status: str | None


def _hour_counts(model: str, start_ns: int, end_ns: int, bucket_ns: int) -> sa.Select:
    bucket = ((_HOURS.c.hour_start_ns - start_ns) // bucket_ns).label("bucket")
    return (
        sa.select(
            bucket,
            _HOURS.c.version,
            _HOURS.c.kind,
            _HOURS.c.feature,
            sa.func.sum(_HOURS.c.windows).label("windows"),
            sa.func.sum(_HOURS.c.drifted_windows).label("drifted_windows"),
            sa.func.sum(_HOURS.c.alarmed_windows).label("alarmed_windows"),
            sa.func.max(_HOURS.c.last_end_ns).label("last_end_ns"),
            sa.func.max(_HOURS.c.finding_id).label("finding_id"),
        )
        .where(
            _HOURS.c.model == model,
            _HOURS.c.hour_start_ns >= start_ns,
            _HOURS.c.hour_start_ns < end_ns,
        )
        .group_by(bucket, _HOURS.c.version, _HOURS.c.kind, _HOURS.c.feature)
    )


def drift_heatmap(
    connection: sa.Connection, model: str, *, start_ns: int, end_ns: int, bucket_ns: int
) -> list[HeatmapCell]:
    """The model's cells whose window ends in [start_ns, end_ns), merged into buckets of
    `bucket_ns` counted from `start_ns`, by version, kind, feature, then bucket.

    Buckets of whole hours from an hour boundary read the hour table (so the range is
    taken to whole hours); any other read the cells.
    """
    if bucket_ns <= 0:
        raise ValueError("bucket_ns must be positive")
    if start_ns % HOUR_NS == 0 and bucket_ns % HOUR_NS == 0:
        counts = _hour_counts(model, start_ns, end_ns, bucket_ns)
    else:
        counts = window_counts(
            start_ns,
            bucket_ns,
            where=(
                _CELLS.c.model == model,
                _CELLS.c.window_end_ns >= start_ns,
                _CELLS.c.window_end_ns < end_ns,
            ),
        )
    groups = list(connection.execute(counts))
    ends = sorted({row.last_end_ns for row in groups})
    latest = {}
    if ends:
        query = sa.select(_CELLS).where(_CELLS.c.model == model, _CELLS.c.window_end_ns.in_(ends))
        latest = {
            (row.window_end_ns, row.version, row.kind, row.feature): row
            for row in connection.execute(query)
        }
    findings = findings_by_id(connection, sorted({g.finding_id for g in groups if g.finding_id}))
    cells = []
    for group in groups:
        last = latest[group.last_end_ns, group.version, group.kind, group.feature]
        finding = findings.get(group.finding_id)
        cells.append(
            HeatmapCell(
                int(group.bucket),
                group.version,
                group.kind,
                group.feature,
                int(group.windows),
                int(group.drifted_windows),
                int(group.alarmed_windows),
                group.last_end_ns,
                last.window_start_ns,
                last.test,
                last.score,
                last.score_kind,
                last.threshold,
                group.finding_id,
                None if finding is None else finding.status,
            )
        )
    cells.sort(key=lambda c: (c.version, c.kind, c.feature, c.bucket))
    return cells
