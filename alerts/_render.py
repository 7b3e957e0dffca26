"""Text every receiver shares: titles, evidence lines, timestamps and "…and N more".

Pure functions of a `Notification`, so each receiver's payload is reproducible (the
golden files in `tests/alerts/golden/` pin them). Budgets are counted in characters
(Python `len`), which is how Slack and PagerDuty count theirs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from ._model import Alert, AlertStatus, Notification

ELLIPSIS = "…"

# Labels that say what an alert is about, in the order a reader wants them.
_TITLE_LABELS = ("kind", "model", "version", "environment", "feature")


def overflow(count: int, noun: str = "more") -> str:
    """`…and N more`: the line that stands for what did not fit."""
    return f"{ELLIPSIS}and {count} {noun}"


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in `…` when it was cut."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if len(text) <= limit:
        return text
    return text[: limit - 1] + ELLIPSIS


def format_labels(labels: dict[str, str], *, sep: str = ", ") -> str:
    """`name=value` pairs in name order."""
    return sep.join(f"{k}={v}" for k, v in sorted(labels.items()))


def title(notification: Notification) -> str:
    """`[FIRING:2] kind=drift, model=fraud`: status, firing count and the group labels.

    A resolved group shows `[RESOLVED]`; a firing group with resolved members shows
    only the firing count, as Alertmanager's default templates do.
    """
    if notification.status is AlertStatus.FIRING:
        head = f"[FIRING:{len(notification.firing)}]"
    else:
        head = "[RESOLVED]"
    labels = notification.group_labels or notification.common_labels
    return f"{head} {format_labels(labels)}" if labels else head


def alert_title(alert: Alert) -> str:
    """The alert's `title` annotation, or its identifying labels when it has none."""
    text = alert.annotations.get("title")
    if isinstance(text, str) and text.strip():
        return text.strip()
    parts = [f"{k}={alert.labels[k]}" for k in _TITLE_LABELS if k in alert.labels]
    return ", ".join(parts) or format_labels(alert.labels) or alert.fingerprint


def format_value(value: Any) -> str:
    """A statistic as a reader wants it: floats to 4 significant digits."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {format_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return str(value)


def evidence_lines(alert: Alert) -> list[str]:
    """`name: value` for each statistic the decision was made from, in their order."""
    evidence = alert.annotations.get("evidence")
    if isinstance(evidence, dict):
        return [f"{k}: {format_value(v)}" for k, v in evidence.items()]
    if evidence is None:
        return []
    return [format_value(evidence)]


def summary(alert: Alert) -> str | None:
    text = alert.annotations.get("summary")
    return text.strip() if isinstance(text, str) and text.strip() else None


def ordered_alerts(notification: Notification) -> list[Alert]:
    """Firing first, then resolved; each by start time, ties in the notification's order."""

    def key(a: Alert) -> tuple[int, int]:
        return (0 if a.status is AlertStatus.FIRING else 1, a.starts_at_ns)

    return sorted(notification.alerts, key=key)


def iso_time(ns: int | None) -> str | None:
    """RFC 3339 in UTC with millisecond precision, or None."""
    if ns is None:
        return None
    moment = datetime.fromtimestamp(ns / 1e9, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def fit_lines(
    lines: Sequence[str],
    limit: int,
    *,
    sep: str = "\n",
    more: Callable[[int], str] = overflow,
) -> str:
    """As many whole lines as fit in `limit` characters, then `…and N more`.

    When not even the first line fits beside the marker, the first line is cut
    short instead, so the reader still sees how it starts.
    """
    text = sep.join(lines)
    if len(text) <= limit:
        return text
    count = len(lines)
    head = ""  # sep.join(lines[:kept])
    best = ""
    for kept in range(1, count):
        head = f"{head}{sep}{lines[kept - 1]}" if kept > 1 else lines[0]
        candidate = f"{head}{sep}{more(count - kept)}"
        if len(candidate) > limit:
            break
        best = candidate
    if best:
        return best
    room = limit - len(sep) - len(more(count - 1))
    if count > 1 and room >= min(len(lines[0]), 16):
        return truncate(lines[0], room) + sep + more(count - 1)
    if count == 1:
        return truncate(text, limit)
    return truncate(more(count), limit)


def jsonable(value: Any) -> Any:
    """`value` as strict JSON values: str keys, lists, and non-finite floats as strings."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return str(value)


def scrub(text: str, secrets: Sequence[str]) -> str:
    """`text` with every secret replaced by `***` (for details, logs and errors)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
