"""The model page's drift heatmap: features down, windows across, one coloured cell each.

The analyzer tests drift once a minute, so a range holds far more windows than a page can
show: windows are merged into at most `HEATMAP_COLUMNS` buckets by the end of their
window (whole minutes; whole hours past a day, read from the store's hour rows). A bucket shows its worst state (a
finding raised, a test over its threshold, or how close the latest test came) and links
to the latest finding it raised, whose page holds the Evidently report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from inferloop.grains import MINUTE_S
from inferloop.store.drift_cells import any_drift_cell
from inferloop.store.drift_heatmap import HeatmapCell, drift_heatmap
from inferloop.store.references import active_reference

__all__ = ["HEATMAP_COLUMNS", "LEGEND", "drift_heatmap_view"]

_NS = 1_000_000_000
HOUR_S = 3600
HEATMAP_COLUMNS = 48
LEGEND = (
    ("alarm", "finding raised (opens it)"),
    ("drift", "over the test's threshold, no finding"),
    ("warm", "past halfway to the threshold"),
    ("calm", "no drift"),
    ("none", "not tested"),
)
"""Cell states, worst first: the class suffix of each cell and what it means."""
_KIND_ORDER = {"data_drift": 0, "prediction_drift": 1, "embedding_drift": 2, "dataset_drift": 3}


@dataclass(frozen=True, slots=True)
class _Column:
    """The windows whose end falls in [start_s, end_s); `label` is their start, UTC."""

    start_s: int
    end_s: int
    label: str


def _columns(start_s: int, end_s: int, bucket_s: int) -> list[_Column]:
    shape = "%H:%M" if end_s - start_s <= 24 * 3600 else "%m-%d %H:%M"
    return [
        _Column(at, min(end_s, at + bucket_s), datetime.fromtimestamp(at, UTC).strftime(shape))
        for at in range(start_s, end_s, bucket_s)
    ]


def _bucket_s(length_s: int) -> int:
    """Whole minutes per column; whole hours past a day, so the store reads its hour rows."""
    grain = HOUR_S if length_s > 24 * HOUR_S else MINUTE_S
    return max(MINUTE_S, math.ceil(length_s / HEATMAP_COLUMNS / grain) * grain)


def _closeness(score: float | None, threshold: float | None, score_kind: str) -> float | None:
    """How far toward its threshold the latest test came: 0 none, 1 at the threshold."""
    if score is None or threshold is None or not math.isfinite(score) or threshold <= 0:
        return None
    if score_kind == "p_value":
        if threshold >= 1:
            return None
        return math.log(max(score, 1e-300)) / math.log(threshold)
    return score / threshold


def _state(row: HeatmapCell) -> str:
    if row.finding_id is not None or row.alarmed_windows:
        return "alarm"
    if row.drifted_windows:
        return "drift"
    closeness = _closeness(row.score, row.threshold, row.score_kind)
    return "warm" if closeness is not None and closeness >= 0.5 else "calm"


def _label(kind: str, feature: str, version: str, several_versions: bool) -> str:
    name = {
        "dataset_drift": "dataset (share drifted)",
        "embedding_drift": f"embedding {feature}",
        "prediction_drift": f"{feature} (output)",
    }.get(kind, feature)
    return f"{version} · {name}" if several_versions and version else name


def _title(row: HeatmapCell, label: str, column: _Column, utc) -> str:
    score = "—" if row.score is None else f"{row.score:.3g}"
    threshold = "" if row.threshold is None else f" (threshold {row.threshold:.3g})"
    parts = [
        f"{label}: windows ending {utc(column.start_s * _NS)} – {utc(column.end_s * _NS)}",
        f"{row.windows} tested, {row.drifted_windows} over threshold",
        f"latest {row.test} {row.score_kind} {score}{threshold}",
    ]
    if row.finding_id is None:
        parts.append("no finding, so no report")
    else:
        parts.append(f"finding {row.finding_id} ({row.finding_status})")
    return " · ".join(parts)


def drift_heatmap_view(
    connection: sa.Connection, model: str, *, start_s: int, end_s: int, range_name: str, utc
) -> dict[str, Any]:
    """Rows of cells for the template, the column times, the legend, or why it is empty.

    `utc` formats nanoseconds for the cells' titles (the templates' own filter)."""
    bucket_s = _bucket_s(end_s - start_s)
    columns = _columns(start_s, end_s, bucket_s)
    count = len(columns)
    found = drift_heatmap(
        connection,
        model,
        start_ns=start_s * _NS,
        end_ns=end_s * _NS,
        bucket_ns=bucket_s * _NS,
    )
    view: dict[str, Any] = {"legend": LEGEND, "bucket_s": bucket_s, "columns": columns}
    if not found:
        view["rows"] = []
        view["empty"] = _empty_reason(connection, model, range_name)
        return view
    several = len({row.version for row in found}) > 1
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in found:
        key = (row.version, row.kind, row.feature)
        label = _label(row.kind, row.feature, row.version, several)
        line = rows.setdefault(
            key, {"label": label, "cells": [{"state": "none", "href": None, "title": ""}] * count}
        )
        column = columns[row.bucket]
        line["cells"][row.bucket] = {
            "state": _state(row),
            "href": None if row.finding_id is None else f"/ui/findings/{row.finding_id}",
            "title": _title(row, label, column, utc),
            "finding_id": row.finding_id,
        }
    order = sorted(rows, key=lambda k: (k[0], _KIND_ORDER.get(k[1], 9), k[2]))
    view["rows"] = [rows[key] for key in order]
    view["empty"] = None
    return view


def _empty_reason(connection: sa.Connection, model: str, range_name: str) -> str:
    if any_drift_cell(connection, model):
        return f"No drift analysis of {model} in the last {range_name}: pick a longer range."
    if active_reference(connection, model, None) is None:
        return (
            f"No reference pinned for {model}, and no drift analysis yet. Pin one with "
            f"`inferloop reference {model} FILE` or POST /v1/models/{model}/reference; "
            "until then the analyzer compares each window with the model's first events, "
            "once it has enough of them."
        )
    return (
        f"No drift analysis of {model} yet in the last {range_name}: the analyzer tests a "
        "window once it holds enough rows."
    )
