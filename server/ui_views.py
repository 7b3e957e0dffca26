"""What each dashboard page shows, read from the store: plain dicts for the templates.

One function per page (and one for the model chart's data), each on one connection. The
time range is one of `RANGES`; every panel of a page reads the same `UiRange`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from inferloop.alerts import silence_state, stored_silences
from inferloop.grains import MINUTE_S, ceil_to_minute_s
from inferloop.store.dashboard_queries import (
    bucketed_series,
    call_buckets,
    model_known,
    model_totals,
    open_findings_by_model,
)
from inferloop.store.feedback_pages import checks_page, history_page, requests_page, versions_page
from inferloop.store.findings import findings_by_id, list_findings
from inferloop.store.outbox import all_receiver_health, delivery_log, notifications
from inferloop.store.vocabulary import ACTIVE_STATUSES, FindingStatus
from inferloop.times import ms_of_ns

from .ui_model_panels import model_panels

__all__ = [
    "DEFAULT_RANGE",
    "RANGES",
    "UiRange",
    "alerts_page",
    "feedback_page",
    "finding_page",
    "findings_list_page",
    "model_page",
    "model_series",
    "overview_page",
    "resolve_range",
]

_NS = 1_000_000_000
_SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}
_PAGE_ROWS = 500


@dataclass(frozen=True, slots=True)
class UiRange:
    """A named range ending now (rounded up to the minute), read in buckets of `step_s`."""

    name: str
    start_s: int
    end_s: int
    step_s: int


RANGES: dict[str, tuple[int, int]] = {
    "15m": (15 * 60, MINUTE_S),
    "1h": (3600, MINUTE_S),
    "6h": (6 * 3600, MINUTE_S),
    "24h": (24 * 3600, 3600),
    "7d": (7 * 24 * 3600, 3600),
}
"""name → (length, chart bucket) in seconds: at most 360 points per line. Minute buckets
read each version's minute rows (percentiles precomputed), hour buckets the hour rows; a
bucket between the two would merge every minute's histogram in it (about 3,000 for a day
of two versions: 90 ms)."""
DEFAULT_RANGE = "6h"


def resolve_range(name: str | None, now_s: float) -> UiRange:
    """The range called `name` (the default when None); raises ValueError when unknown."""
    name = name or DEFAULT_RANGE
    if name not in RANGES:
        raise ValueError(f"unknown range {name!r}: use one of {', '.join(RANGES)}")
    length, step = RANGES[name]
    end = ceil_to_minute_s(now_s)
    # The start sits on a bucket boundary, so the buckets of two loads line up.
    start = (end - length) // step * step
    return UiRange(name, start, end, step)


def overview_page(connection: sa.Connection, window: UiRange) -> dict[str, Any]:
    """One card per model, and the open findings most severe first."""
    totals = model_totals(connection, start_s=window.start_s, end_s=window.end_s)
    spark_step = max(window.step_s, (window.end_s - window.start_s) // 48)
    sparks = call_buckets(connection, start_s=window.start_s, end_s=window.end_s, step_s=spark_step)
    open_counts = open_findings_by_model(connection)
    starts = range(window.start_s, window.end_s, spark_step)
    models = [
        {
            "model": t.model,
            "count": t.count,
            "errors": t.errors,
            "error_rate": t.error_rate,
            "p50_ms": ms_of_ns(t.p50_ns),
            "p95_ms": ms_of_ns(t.p95_ns),
            "p99_ms": ms_of_ns(t.p99_ns),
            "open_findings": sum(open_counts.get(t.model, {}).values()),
            "spark": [sparks.get(t.model, {}).get(s, 0) for s in starts],
        }
        for t in totals
    ]
    seen = {m["model"] for m in models}
    for model in sorted(set(open_counts) - seen):  # findings of a model quiet in this range
        models.append(
            {
                "model": model,
                "count": 0,
                "errors": 0,
                "error_rate": None,
                "p50_ms": None,
                "p95_ms": None,
                "p99_ms": None,
                "open_findings": sum(open_counts[model].values()),
                "spark": [],
            }
        )
    attention = sorted(
        list_findings(connection, statuses=ACTIVE_STATUSES),
        key=lambda f: (_SEVERITY_ORDER.get(f.severity, 9), -f.last_seen_ns),
    )[:20]
    return {"models": models, "attention": attention}


def model_page(connection: sa.Connection, model: str, window: UiRange) -> dict[str, Any] | None:
    """The header figures of a model page (the charts fetch `model_series`); None if unknown."""
    versions = versions_page(connection, model, after=None, limit=_PAGE_ROWS)
    if not versions and not model_known(connection, model):
        return None
    found = model_totals(connection, start_s=window.start_s, end_s=window.end_s, model=model)
    totals = found[0] if found else None
    panels = model_panels(connection, model, window, versions)
    return panels | {
        "model": model,
        "totals": totals,
        "p50_ms": ms_of_ns(totals.p50_ns) if totals else None,
        "p95_ms": ms_of_ns(totals.p95_ns) if totals else None,
        "p99_ms": ms_of_ns(totals.p99_ns) if totals else None,
        "versions": versions,
        "findings": list_findings(connection, model=model, statuses=ACTIVE_STATUSES),
    }


def model_series(connection: sa.Connection, model: str, window: UiRange) -> dict[str, Any]:
    """Columnar chart data: buckets of the range, all versions and each (latency, calls,
    errors, GPU time), with the registry's moves in the range as markers."""
    total, by_version = bucketed_series(
        connection,
        model,
        start_s=window.start_s,
        end_s=window.end_s,
        step_s=window.step_s,
    )
    moves = history_page(connection, model, after=None, limit=_PAGE_ROWS * 4)
    markers = [
        {
            "t": move["at_ns"] / _NS,
            "label": f"v{move['version']} → {move['to_state']}",
            "state": move["to_state"],
            "environment": move["environment"],
        }
        for move in moves
        if window.start_s * _NS <= move["at_ns"] < window.end_s * _NS
    ]
    return {
        "model": model,
        "range": window.name,
        "start_s": window.start_s,
        "end_s": window.end_s,
        "step_s": window.step_s,
        "total": total.to_dict(),
        "versions": {version: series.to_dict() for version, series in by_version.items()},
        "markers": markers,
    }


def findings_list_page(connection: sa.Connection, *, show_all: bool) -> dict[str, Any]:
    statuses = list(FindingStatus) if show_all else list(ACTIVE_STATUSES)
    rows = list_findings(connection, statuses=statuses)
    rows.sort(key=lambda f: (_SEVERITY_ORDER.get(f.severity, 9), -f.last_seen_ns))
    return {"findings": rows[:_PAGE_ROWS], "total": len(rows), "show_all": show_all}


def finding_page(connection: sa.Connection, finding_id: int) -> dict[str, Any] | None:
    finding = findings_by_id(connection, [finding_id]).get(finding_id)
    if finding is None:
        return None
    evidence = dict(finding.evidence or {})
    features = evidence.get("features")
    if not isinstance(features, list):  # one feature's drift is the evidence itself
        features = [evidence] if "test" in evidence and "feature" in evidence else []
    other = {k: v for k, v in evidence.items() if k not in {"features"}}
    return {
        "finding": finding,
        "features": [
            _feature_row(c, evidence.get("drifted_columns"))
            for c in features
            if isinstance(c, dict)
        ],
        "evidence": other,
    }


def _feature_row(column: dict[str, Any], drifted_columns: Any) -> dict[str, Any]:
    """One feature's drift, with `drifted` as the finding lists it or else decided as the
    test does: a p-value below its threshold, or a distance at or above it."""
    score, threshold = column.get("score"), column.get("threshold")
    drifted = column.get("drifted")
    if drifted is None and isinstance(drifted_columns, list):
        drifted = column.get("feature") in drifted_columns
    if drifted is None and isinstance(score, int | float) and isinstance(threshold, int | float):
        drifted = score < threshold if column.get("score_kind") == "p_value" else score >= threshold
    keys = ("feature", "kind", "test", "score", "score_kind", "threshold")
    return {k: column.get(k) for k in keys} | {
        "drifted": bool(drifted),
        "reference_rows": column.get("reference_rows"),
        "current_rows": column.get("current_rows"),
    }


def alerts_page(connection: sa.Connection, now_ns: int) -> dict[str, Any]:
    """Notifications (newest first), their delivery attempts, receivers and silences."""
    rows = notifications(connection, limit=_PAGE_ROWS)
    attempts: dict[str, list] = {}
    for attempt in delivery_log(connection, limit=_PAGE_ROWS * 4):
        attempts.setdefault(attempt.notification_id, []).append(attempt)
    silences = [
        {**s.to_dict(), "state": silence_state(s, now_ns)}
        for s in stored_silences(connection, now_ns=now_ns, include_expired=True)
    ]
    return {
        "notifications": list(reversed(rows)),
        "attempts": attempts,
        "receivers": all_receiver_health(connection),
        "silences": silences,
    }


def feedback_page(connection: sa.Connection, model: str) -> dict[str, Any] | None:
    """The registry of `model`, its history, each version's rollout checks and requests."""
    versions = versions_page(connection, model, after=None, limit=_PAGE_ROWS)
    if not versions and not model_known(connection, model):
        return None
    checks = {
        v["version"]: checks_page(connection, model, v["version"], after=None, limit=_PAGE_ROWS)
        for v in versions
    }
    return {
        "model": model,
        "versions": versions,
        "history": history_page(connection, model, after=None, limit=_PAGE_ROWS),
        "checks": {version: rows for version, rows in checks.items() if rows},
        "requests": requests_page(
            connection, filters={"model": model}, after=None, limit=_PAGE_ROWS
        ),
    }
