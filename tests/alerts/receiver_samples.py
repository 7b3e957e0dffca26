"""Notifications the receiver tests render and send, and the golden-file comparison.

Golden files live in `tests/alerts/golden/`. Regenerate them after a deliberate
change of a rendering with

    INFERLOOP_REGENERATE_GOLDEN=1 .venv/bin/python -m pytest tests/alerts -k receivers

and review the diff; otherwise each test compares byte for byte.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from inferloop.alerts import Alert, AlertStatus, Notification

GOLDEN_DIR = Path(__file__).parent / "golden"
# Read at import: the autouse fixture clears INFERLOOP_* before each test runs.
REGENERATE = os.environ.get("INFERLOOP_REGENERATE_GOLDEN") == "1"

T0_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
MINUTE_NS = 60_000_000_000


def drift_alert(feature: str, *, psi: float = 0.31, resolved: bool = False, **labels: str) -> Alert:
    base = {
        "alertname": "drift",
        "kind": "drift",
        "model": "fraud",
        "version": "7",
        "environment": "prod",
        "severity": "critical",
        "feature": feature,
    }
    return Alert(
        labels={**base, **labels},
        annotations={
            "title": f"Drift in {feature}",
            "summary": f"PSI {psi} over the last hour against the reference",
            "evidence": {"stattest": "psi", "statistic": psi, "threshold": 0.2, "rows": 5210},
            "finding_id": f"f-{feature}",
        },
        starts_at_ns=T0_NS,
        ends_at_ns=T0_NS + 30 * MINUTE_NS if resolved else None,
    )


def notification(
    alerts: tuple[Alert, ...] | list[Alert],
    *,
    status: AlertStatus = AlertStatus.FIRING,
    id: str = "n-0001",
    receiver: str = "oncall",
    group_labels: dict[str, str] | None = None,
) -> Notification:
    return Notification(
        id=id,
        receiver=receiver,
        group_key='{}/{severity="critical"}:{model="fraud"}',
        status=status,
        group_labels=group_labels if group_labels is not None else {"model": "fraud"},
        common_labels={"model": "fraud", "environment": "prod", "alertname": "drift"},
        alerts=tuple(alerts),
        created_at_ns=T0_NS + 5 * MINUTE_NS,
        dashboard_url="https://inferloop.example/models/fraud?from=now-6h",
    )


def firing() -> Notification:
    return notification([drift_alert("amount", psi=0.31), drift_alert("country", psi=0.27)])


def resolved() -> Notification:
    return notification(
        [drift_alert("amount", resolved=True), drift_alert("country", resolved=True)],
        status=AlertStatus.RESOLVED,
        id="n-0002",
    )


def many(count: int) -> Notification:
    """A firing group too big for any single message."""
    return notification(
        [drift_alert(f"feature_{i:03d}", psi=0.2 + i / 1000) for i in range(count)], id="n-0003"
    )


def assert_golden(name: str, actual: Any) -> None:
    """Compare with `golden/<name>` (JSON for objects, text for str/bytes)."""
    path = GOLDEN_DIR / name
    if isinstance(actual, bytes):
        text = actual.decode()
    elif isinstance(actual, str):
        text = actual
    else:
        text = json.dumps(actual, indent=2, ensure_ascii=False) + "\n"
    if REGENERATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode())
        return
    assert path.exists(), f"no golden file {path}; run with INFERLOOP_REGENERATE_GOLDEN=1"
    expected = path.read_bytes().decode()
    assert text == expected, f"{name} differs from its golden file; regenerate if deliberate"
