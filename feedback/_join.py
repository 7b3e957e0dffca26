"""Join metrics: how many predictions have their label, how late labels come, what changed.

Per model and version, over predictions started in a window. For each prediction the
label versions whose ``time_ns`` is at most ``join_window`` after the prediction's
start are joined; the one in force is the latest of them (by ``time_ns``, then
receive time, then event id: the rule of ``inferloop.store.labeled_rows``). Versions
past the window are counted, not joined; labels whose prediction is not stored yet
are counted as waiting. Every figure is a function of what is stored, so any arrival
order of the same predictions and labels gives the same metrics.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from itertools import groupby

import sqlalchemy as sa

from inferloop.store.label_join import (
    LabelVersionRow,
    WaitingLabels,
    label_versions,
    prediction_counts,
    waiting_labels,
)

DEFAULT_JOIN_WINDOW_S = 14 * 86_400
"""How long after a prediction its label is still joined (Arize's default look-back)."""
_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class VersionJoin:
    """The join of one model version's predictions in the window."""

    version: str
    predictions: int
    labeled: int
    """Predictions with a label in force (joined within the join window)."""
    past_join_window: int
    """Label versions that came more than the join window after their prediction."""
    corrections: int
    """Joined label versions superseded by a later one (a version's count minus one)."""
    delay_p50_s: float | None
    delay_p95_s: float | None
    """Label delay (label ``time_ns`` minus prediction start) of the labels in force."""

    @property
    def coverage(self) -> float | None:
        return self.labeled / self.predictions if self.predictions else None

    @property
    def revised(self) -> bool:
        """True when a label in force is a correction: the figures moved after a resend."""
        return self.corrections > 0


@dataclass(frozen=True, slots=True)
class LabelJoinReport:
    model: str
    start_ns: int
    end_ns: int
    join_window_ns: int
    waiting: int
    """Prediction ids labeled in the window whose prediction is not stored (yet)."""
    waiting_past_join_window: int
    """Of those, the ones whose first label is older than the join window: likely orphans."""
    versions: tuple[VersionJoin, ...]


def _percentile(ordered: list[int], q: float) -> float | None:
    """Nearest-rank percentile in seconds: always a delay that was observed."""
    if not ordered:
        return None
    rank = max(math.ceil(q * len(ordered)), 1)
    return ordered[rank - 1] / _NS


def _in_force_key(row: LabelVersionRow) -> tuple[int, int, str]:
    return row.label_time_ns, row.label_received_at_ns, row.label_event_id


def summarize_join(
    *,
    model: str,
    start_ns: int,
    end_ns: int,
    join_window_ns: int,
    predictions: Mapping[str, int],
    versions: Iterable[LabelVersionRow],
    waiting: WaitingLabels,
) -> LabelJoinReport:
    """The report from the rows the store returned (pure: no I/O, no clock)."""
    labeled: dict[str, int] = dict.fromkeys(predictions, 0)
    past: dict[str, int] = dict.fromkeys(predictions, 0)
    corrections: dict[str, int] = dict.fromkeys(predictions, 0)
    delays: dict[str, list[int]] = {version: [] for version in predictions}
    ordered = sorted(versions, key=lambda row: row.event_id)
    for _event_id, group in groupby(ordered, key=lambda row: row.event_id):
        rows = list(group)
        version = rows[0].version
        joined = [r for r in rows if r.label_time_ns - r.start_time_ns <= join_window_ns]
        past[version] = past.get(version, 0) + len(rows) - len(joined)
        if not joined:
            continue
        in_force = max(joined, key=_in_force_key)
        labeled[version] = labeled.get(version, 0) + 1
        corrections[version] = corrections.get(version, 0) + len(joined) - 1
        delays.setdefault(version, []).append(in_force.label_time_ns - in_force.start_time_ns)
    report_versions = []
    for version in sorted(predictions):
        ordered_delays = sorted(delays.get(version, []))
        report_versions.append(
            VersionJoin(
                version=version,
                predictions=predictions[version],
                labeled=labeled.get(version, 0),
                past_join_window=past.get(version, 0),
                corrections=corrections.get(version, 0),
                delay_p50_s=_percentile(ordered_delays, 0.50),
                delay_p95_s=_percentile(ordered_delays, 0.95),
            )
        )
    return LabelJoinReport(
        model=model,
        start_ns=start_ns,
        end_ns=end_ns,
        join_window_ns=join_window_ns,
        waiting=waiting.predictions,
        waiting_past_join_window=waiting.older_than_cutoff,
        versions=tuple(report_versions),
    )


def label_join(
    connection: sa.Connection,
    *,
    model: str,
    start_ns: int,
    end_ns: int,
    join_window_s: float = DEFAULT_JOIN_WINDOW_S,
    clock: Callable[[], int] = time.time_ns,
) -> LabelJoinReport:
    """Join metrics of ``model``'s predictions started in [start_ns, end_ns), per version.

    ``clock`` (Unix ns) decides which waiting labels are past the join window.
    """
    if start_ns >= end_ns:
        raise ValueError("start_ns must be before end_ns")
    if join_window_s <= 0:
        raise ValueError("join_window_s must be positive")
    window_ns = int(join_window_s * _NS)
    window = {"model": model, "start_ns": start_ns, "end_ns": end_ns}
    return summarize_join(
        **window,
        join_window_ns=window_ns,
        predictions=prediction_counts(connection, **window),
        versions=label_versions(connection, **window),
        waiting=waiting_labels(connection, **window, cutoff_ns=clock() - window_ns),
    )
