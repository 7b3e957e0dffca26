"""The model page's version comparison, label quality, label delay and completeness panels.

No statistics of its own: the versions are compared in `ui_version_compare`, and label
quality is the analyzer's accuracy or MAE (`prediction_pairs`, `classification_metrics`,
`regression_metrics`).

Charts are drawn here as SVG coordinates (the templates only place them), so a panel
refreshed in place by `data-refresh` redraws with it and needs no script.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from inferloop.analyzer import classification_metrics, regression_metrics
from inferloop.analyzer._check_labels import prediction_pairs
from inferloop.store.completeness import completeness
from inferloop.store.label_panels import (
    label_delays,
    labeled_predictions,
    version_ranges,
)

from .ui_version_compare import version_compare_view, version_key

__all__ = [
    "DELAY_BUCKETS",
    "completeness_view",
    "label_delay_view",
    "label_quality_view",
    "model_panels",
]

log = logging.getLogger("inferloop.server")
_NS = 1_000_000_000
_BUCKET_ROWS = 5_000
"""The most labeled predictions the quality panel reads per bucket (a sample past it)."""
_QUALITY_BUCKETS = 24
_CHART_W, _CHART_H = 600, 170
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 44, 8, 10, 34
DELAY_BUCKETS: tuple[tuple[str, int], ...] = (
    ("< 1 s", 1),
    ("1–10 s", 10),
    ("10 s–1 min", 60),
    ("1–10 min", 600),
    ("10 min–1 h", 3600),
    ("1–6 h", 6 * 3600),
    ("6–24 h", 24 * 3600),
    ("1–7 d", 7 * 24 * 3600),
    ("≥ 7 d", 0),
)
"""Label-delay bars: (label, upper edge in seconds; the last has none). A decade or so per
bar, on the units people think in; a label stamped before its prediction counts as < 1 s."""


def model_panels(
    connection: sa.Connection, model: str, window, versions: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The four panels of `model` over `window` (a `ui_views.UiRange`), for the template;
    `versions` are the registry's (their states name the live version). A panel whose
    read fails says so in its place; the rest of the page still renders."""
    ranges = version_ranges(connection, model, start_s=window.start_s, end_s=window.end_s)
    builds = {
        "version_compare": lambda: version_compare_view(
            connection, model, window, versions, ranges
        ),
        "label_quality": lambda: label_quality_view(connection, model, window, list(ranges)),
        "label_delay": lambda: label_delay_view(connection, model, window),
        "completeness": lambda: completeness_view(connection, model, window),
    }
    return {name: _guarded(connection, name, build) for name, build in builds.items()}


def _guarded(connection: sa.Connection, name: str, build) -> dict[str, Any]:
    try:
        return build()
    except sa.exc.SQLAlchemyError as error:
        connection.rollback()  # PostgreSQL refuses the next read in a failed transaction
        log.warning("model page panel %s could not be read", name, exc_info=True)
        cause = str(getattr(error, "orig", None) or error).splitlines()[0][:200]
        what = name.replace("_", " ")
        return {
            "error": f"The {what} panel could not be read from the store ({cause}).",
            "empty": None,
        }


def _quality_bucket_s(window) -> int:
    length = window.end_s - window.start_s
    steps = math.ceil(length / _QUALITY_BUCKETS / window.step_s)
    return max(1, steps) * window.step_s


def _metric(task: str, truth: Any, predicted: Any) -> float:
    if task == "classification":
        return classification_metrics(truth, predicted)["accuracy"]
    return regression_metrics(truth, predicted)["mae"]


def _x(index: float, slots: int) -> float:
    return _PAD_L + (_CHART_W - _PAD_L - _PAD_R) * index / max(1, slots)


def _bars(counts: Sequence[int], labels: Sequence[str], *, top: float, bottom: float) -> list:
    """One bar per count between `top` and `bottom` (y), with its label."""
    peak = max(counts, default=0) or 1
    width = (_CHART_W - _PAD_L - _PAD_R) / max(1, len(counts))
    bars = []
    for index, (count, label) in enumerate(zip(counts, labels, strict=True)):
        height = (bottom - top) * count / peak
        bars.append(
            {
                "x": round(_x(index, len(counts)) + width * 0.1, 1),
                "y": round(bottom - height, 1),
                "width": round(width * 0.8, 1),
                "height": round(height, 1),
                "cx": round(_x(index + 0.5, len(counts)), 1),
                "count": count,
                "label": label,
            }
        )
    return bars


def _time_label(at_s: int, length_s: int) -> str:
    shape = "%H:%M" if length_s <= 24 * 3600 else "%m-%d %H:%M"
    return datetime.fromtimestamp(at_s, UTC).strftime(shape)


def label_quality_view(
    connection: sa.Connection, model: str, window, served: Sequence[str]
) -> dict[str, Any]:
    """Accuracy (MAE for a regressor) of the labeled predictions per bucket of the range,
    by prediction time, with each bucket's labeled count; per version over the range.
    `served`: the versions with calls in the range (the keys of `version_ranges`)."""
    bucket_s = _quality_bucket_s(window)
    slots = math.ceil((window.end_s - window.start_s) / bucket_s)
    rows, truncated = [], False
    for index in range(slots):  # read bucket by bucket: a bound that leaves no bucket empty
        at_s = window.start_s + index * bucket_s
        found, cut = labeled_predictions(
            connection,
            model,
            versions=served,
            start_ns=at_s * _NS,
            end_ns=min(window.end_s, at_s + bucket_s) * _NS,
            limit=_BUCKET_ROWS,
        )
        rows += found
        truncated |= cut
    view: dict[str, Any] = {
        "truncated": truncated,
        "labeled": len(rows),
        "bucket_rows": _BUCKET_ROWS,
    }
    if not rows:
        view["empty"] = (
            f"No labels arrived for the predictions of {model} in the last {window.name}. "
            "Send ground truth keyed by prediction id (POST /v1/labels, or the SDK's label "
            "call); this panel shows accuracy per bucket once labels join."
        )
        return view
    overall = prediction_pairs([(r.outputs, r.label) for r in rows], None)
    if overall is None:
        view["empty"] = (
            f"{len(rows):,} labels joined, but no prediction of {model} has an output to "
            "compare them with (the first output row needs a field such as `prediction`, "
            "`label`, `class` or `score`)."
        )
        return view
    task = overall[0]
    grouped: dict[int, list] = {}
    versions: dict[str, list] = {}
    for row in rows:
        index = (row.start_time_ns // _NS - window.start_s) // bucket_s
        grouped.setdefault(int(index), []).append((row.outputs, row.label))
        versions.setdefault(row.version, []).append((row.outputs, row.label))
    values: list[float | None] = [None] * slots
    counts = [0] * slots
    for index, pairs in grouped.items():
        found = prediction_pairs(pairs, None)
        if found is not None and found[0] == task and 0 <= index < slots:
            values[index] = _metric(task, found[1], found[2])
            counts[index] = len(found[1])
    view |= _quality_chart(task, values, counts, window, bucket_s)
    view["versions"] = []
    for version in sorted(versions, key=version_key):
        found = prediction_pairs(versions[version], None)
        if found is not None and found[0] == task:
            value = _metric(task, found[1], found[2])
            view["versions"].append({"version": version, "labeled": len(found[1]), "value": value})
    view["task"] = task
    view["metric"] = "accuracy" if task == "classification" else "MAE"
    view["value"] = _metric(task, overall[1], overall[2])
    view["compared"] = len(overall[1])
    view["empty"] = None
    return view


def _quality_chart(task: str, values, counts, window, bucket_s: int) -> dict[str, Any]:
    """The metric's points and line over the top of the chart, the labeled counts as bars
    in a strip beneath."""
    top, bottom, strip = _PAD_T, _CHART_H - _PAD_B - 34, _CHART_H - _PAD_B
    finite = [v for v in values if v is not None]
    ymax = 1.0 if task == "classification" else (max(finite) * 1.1 or 1.0)
    points = []
    for index, value in enumerate(values):
        if value is not None:
            y = bottom - (bottom - top) * value / ymax
            points.append(
                {
                    "x": round(_x(index + 0.5, len(values)), 1),
                    "y": round(y, 1),
                    "value": value,
                    "count": counts[index],
                    "at": _time_label(
                        window.start_s + index * bucket_s, window.end_s - window.start_s
                    ),
                }
            )
    path = " ".join(f"{'L' if i else 'M'}{p['x']} {p['y']}" for i, p in enumerate(points))
    length = window.end_s - window.start_s
    ticks = [
        {
            "x": round(_x(i, len(values)), 1),
            "label": _time_label(window.start_s + i * bucket_s, length),
        }
        for i in range(0, len(values), max(1, len(values) // 4))
    ]
    label = (lambda v: f"{v:.0%}") if task == "classification" else (lambda v: f"{v:.3g}")
    grid = [
        {"y": round(bottom - (bottom - top) * share, 1), "label": label(ymax * share)}
        for share in (0.0, 0.5, 1.0)
    ]
    bars = _bars(counts, [""] * len(counts), top=bottom + 6, bottom=strip)
    return {
        "width": _CHART_W,
        "height": _CHART_H,
        "points": points,
        "path": path,
        "bars": [b for b in bars if b["count"]],
        "ticks": ticks,
        "grid": grid,
        "left": _PAD_L,
        "right": _CHART_W - _PAD_R,
        "strip_y": strip,
        "bucket_min": bucket_s // 60,
    }


def label_delay_view(connection: sa.Connection, model: str, window) -> dict[str, Any]:
    """Labels whose label time falls in the range, by label time − prediction time."""
    edges = [edge * _NS for _, edge in DELAY_BUCKETS[:-1]]
    delays = label_delays(
        connection,
        model,
        start_ns=window.start_s * _NS,
        end_ns=window.end_s * _NS,
        edges_ns=edges,
    )
    view: dict[str, Any] = {"joined": delays.joined, "waiting": delays.waiting}
    if not delays.joined:
        view["empty"] = (
            f"No label for a stored prediction of {model} arrived in the last {window.name}"
            + (
                f"; {delays.waiting:,} labels wait for predictions that are not stored."
                if delays.waiting
                else "."
            )
        )
        return view
    bottom = _CHART_H - _PAD_B
    view["bars"] = _bars(
        delays.counts, [name for name, _ in DELAY_BUCKETS], top=_PAD_T + 12, bottom=bottom
    )
    view["width"], view["height"], view["base_y"] = _CHART_W, _CHART_H, bottom
    view["left"], view["right"] = _PAD_L, _CHART_W - _PAD_R
    view["empty"] = None
    return view


def completeness_view(connection: sa.Connection, model: str, window) -> dict[str, Any]:
    """`store.completeness` over the range, as `/v1/models/{model}/completeness` reports it."""
    found = completeness(
        connection, model, start_ns=window.start_s * _NS, end_ns=window.end_s * _NS
    )
    drops = sorted(found.sdk_dropped.items(), key=lambda item: (-item[1], item[0]))
    view = {
        "start_s": window.start_s,
        "end_s": window.end_s,
        "emitted": found.emitted,
        "received": found.received,
        "lost": found.lost,
        "received_share": found.received_share,
        "sdk_dropped": drops,
        "sdk_dropped_total": found.sdk_dropped_total,
        "empty": None,
    }
    if not found.emitted and not found.sdk_dropped_total:
        view["empty"] = (
            f"Nothing of {model} emitted in the last {window.name}: no events, labels or "
            "SDK drop reports arrived."
        )
    return view
