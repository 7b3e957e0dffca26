"""The model page's version comparison, label quality, label delay and completeness panels.

No statistics of its own: versions are compared with the analyzer's exact hypergeometric
tests (`hypergeom_upper`, as `compare_latency` and `compare_error_rate` use it) and its
thresholds (`PerfOptions`: α, the 20 % / 1 ms latency change and the 1-point error-rate
change that matter), error rates carry the guard's Clopper–Pearson interval, and label
quality is the analyzer's accuracy or MAE (`prediction_pairs`, `classification_metrics`,
`regression_metrics`). Two differences from the analyzer, both because the page reads the
rollups rather than raw calls: latency is counted from each version's merged histogram, so
the median test's threshold is the upper edge of the pooled quantile's bucket (within the
sketch's 0.5 %) and the counts above it are exact; and the page asks "different?", so each
test is two-sided (twice the smaller one-sided p-value).

Charts are drawn here as SVG coordinates (the templates only place them), so a panel
refreshed in place by `data-refresh` redraws with it and needs no script.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sqlalchemy as sa

from inferloop.analyzer import PerfOptions, classification_metrics, regression_metrics
from inferloop.analyzer._check_labels import prediction_pairs
from inferloop.analyzer._performance import hypergeom_upper
from inferloop.feedback._guard_calibration import binomial_interval
from inferloop.store.completeness import completeness
from inferloop.store.label_panels import (
    VersionRange,
    label_delays,
    labeled_predictions,
    version_ranges,
)
from inferloop.store.sketch import bucket_indexes, quantiles

__all__ = [
    "DELAY_BUCKETS",
    "completeness_view",
    "label_delay_view",
    "label_quality_view",
    "model_panels",
    "version_compare_view",
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


def _version_key(version: str) -> tuple[int, int, str]:
    bare = version.removeprefix("v")
    return (0, int(bare), "") if bare.isdigit() else (1, 0, version)


def _live(versions: Sequence[Mapping[str, Any]]) -> set[str]:
    return {str(v["version"]) for v in versions if "live" in v.get("states", {}).values()}


def _pairs(served: list[str], live: set[str]) -> list[tuple[str, str]]:
    """(candidate, baseline): each version against a live one, a live one against the
    version before it; each pair once, the newer version as the candidate."""
    found: list[tuple[str, str]] = []
    live_served = [v for v in served if v in live]
    for index, version in enumerate(served):
        others = [v for v in live_served if v != version]
        if others:
            baseline = others[-1]
        elif index:
            baseline = served[index - 1]
        else:
            continue
        pair = tuple(sorted((version, baseline), key=_version_key, reverse=True))
        if pair not in found:
            found.append(pair)
    return found


def _p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _two_sided(above_cur: int, above_base: int, n_base: int, n_cur: int) -> float:
    """Twice the smaller of the two one-sided hypergeometric tail probabilities."""
    total = above_cur + above_base
    up = hypergeom_upper(above_cur, total, n_base, n_cur)
    down = hypergeom_upper(above_base, total, n_cur, n_base)
    return min(1.0, 2 * min(up, down))


def _quantile_check(
    base: VersionRange, cur: VersionRange, q: float, options: PerfOptions
) -> dict[str, Any]:
    """The analyzer's generalised median test, counted from two histograms."""
    pooled = dict(base.histogram)
    for key, count in cur.histogram.items():
        pooled[key] = pooled.get(key, 0) + count
    (pooled_q,) = quantiles(pooled, [q])
    edge = int(bucket_indexes(np.array([pooled_q]))[0])
    above_base = sum(c for k, c in base.histogram.items() if int(k) > edge)
    above_cur = sum(c for k, c in cur.histogram.items() if int(k) > edge)
    p_value = _two_sided(above_cur, above_base, base.count, cur.count)
    (base_q,) = quantiles(base.histogram, [q])
    (cur_q,) = quantiles(cur.histogram, [q])
    base_ms, cur_ms = base_q / 1e6, cur_q / 1e6
    change = cur_ms / base_ms - 1 if base_ms > 0 else math.inf
    material = abs(change) >= options.min_latency_increase and (
        abs(cur_ms - base_ms) >= options.min_latency_increase_ms
    )
    name = f"p{round(q * 100)}"
    return {
        "metric": name,
        "baseline": f"{base_ms:,.1f} ms",
        "current": f"{cur_ms:,.1f} ms",
        "difference": f"{cur_ms - base_ms:+,.1f} ms ({change:+.0%})",
        "effect": f"{name} {cur_ms - base_ms:+,.0f} ms",
        "worse": cur_ms > base_ms,
        "test": f"median test at the pooled {name} (hypergeometric, two-sided)",
        "p_value": p_value,
        "p_text": _p_text(p_value),
        "significant": p_value < options.alpha,
        "material": material,
    }


def _error_check(base: VersionRange, cur: VersionRange, options: PerfOptions) -> dict[str, Any]:
    """The analyzer's exact test of error counts (Fisher's), two-sided."""
    p_value = _two_sided(cur.errors, base.errors, base.count, cur.count)
    base_rate, cur_rate = base.errors / base.count, cur.errors / cur.count
    points = (cur_rate - base_rate) * 100
    return {
        "metric": "error rate",
        "baseline": f"{base_rate:.2%}",
        "current": f"{cur_rate:.2%}",
        "difference": f"{points:+.2f} points",
        "effect": f"error rate {points:+.1f} points",
        "worse": cur_rate > base_rate,
        "test": "Fisher's exact test of error counts (hypergeometric, two-sided)",
        "p_value": p_value,
        "p_text": _p_text(p_value),
        "significant": p_value < options.alpha,
        "material": abs(cur_rate - base_rate) >= options.min_error_rate_increase,
    }


def _compare(
    candidate: str, baseline: str, ranges: Mapping[str, VersionRange], options: PerfOptions
) -> dict[str, Any]:
    cur, base = ranges[candidate], ranges[baseline]
    entry: dict[str, Any] = {"candidate": candidate, "baseline": baseline, "checks": []}
    if min(cur.count, base.count) < options.min_samples:
        fewer = candidate if cur.count < base.count else baseline
        entry["verdict"] = (
            f"too few calls to compare v{candidate} with v{baseline}: v{fewer} has "
            f"{min(cur.count, base.count)}, at least {options.min_samples} needed"
        )
        entry["outcome"] = "insufficient"
        return entry
    checks = [_quantile_check(base, cur, q, options) for q in (0.5, 0.95)]
    checks.append(_error_check(base, cur, options))
    entry["checks"] = checks
    found = [c for c in checks if c["significant"] and c["material"]]
    latency = [c for c in found if c["metric"] != "error rate"]
    parts = []
    if latency:
        shown = latency[-1]  # the p95 when both moved
        parts.append(
            f"v{candidate} is {'slower' if shown['worse'] else 'faster'}: "
            f"{shown['effect']}, {shown['p_text']}"
        )
    for check in (c for c in found if c["metric"] == "error rate"):
        parts.append(
            f"v{candidate} {'fails more' if check['worse'] else 'fails less'}: "
            f"{check['effect']}, {check['p_text']}"
        )
    if parts:
        entry["verdict"] = "; ".join(parts) + f" (against v{baseline})"
        entry["outcome"] = "worse" if any(c["worse"] for c in found) else "better"
    else:
        p95 = checks[1]
        entry["verdict"] = (
            f"no material difference between v{candidate} and v{baseline}: "
            f"{p95['effect']}, {p95['p_text']}"
        )
        entry["outcome"] = "same"
    return entry


def version_compare_view(
    connection: sa.Connection,
    model: str,
    window,
    versions: Sequence[Mapping[str, Any]],
    ranges: Mapping[str, VersionRange] | None = None,
) -> dict[str, Any]:
    """Each version with calls in the range (p50, p95, error rate with its 95 % interval)
    and each comparison `_pairs` names, with its tests and a verdict; or why it is empty.
    `ranges`: the versions' figures (`version_ranges`) when the caller has read them."""
    options = PerfOptions()
    if ranges is None:
        ranges = version_ranges(connection, model, start_s=window.start_s, end_s=window.end_s)
    live = _live(versions)
    served = sorted(ranges, key=_version_key)
    rows = []
    for version in served:
        entry = ranges[version]
        p50, p95 = quantiles(entry.histogram, [0.5, 0.95])
        low, high = binomial_interval(entry.errors, entry.count)
        rows.append(
            {
                "version": version,
                "live": version in live,
                "count": entry.count,
                "p50_ms": p50 / 1e6,
                "p95_ms": p95 / 1e6,
                "error_rate": entry.errors / entry.count,
                "error_low": low,
                "error_high": high,
            }
        )
    comparisons = [_compare(c, b, ranges, options) for c, b in _pairs(served, live)]
    empty = None
    if not served:
        empty = f"No calls of {model} in the last {window.name}: pick a longer range."
    elif not comparisons:
        empty = (
            f"Only v{served[0]} served in the last {window.name}: nothing to compare it with; "
            "a longer range may hold the version before it."
        )
    return {
        "rows": rows,
        "comparisons": comparisons,
        "empty": empty,
        "alpha": options.alpha,
        "min_latency_change": options.min_latency_increase,
        "min_latency_change_ms": options.min_latency_increase_ms,
        "min_error_change": options.min_error_rate_increase,
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
    for version in sorted(versions, key=_version_key):
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
