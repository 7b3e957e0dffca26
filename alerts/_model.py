"""The words the alerting core and the receivers share: alerts, notifications, outcomes.

An `Alert` is what a finding becomes once a rule says it should page someone: a
label set (model, version, environment, kind, severity, feature…) plus
annotations (title, evidence) and the interval it was active. Alerts with the same
group labels on the same route form a group; each time a group has to be told
something, the core emits one `Notification` for each receiver of the route. A
receiver turns a notification into one HTTP POST or SMTP session and answers with
a `DeliveryOutcome`, from which the dispatcher decides: done, retry later, or give up.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Alert:
    """One alerting condition, identified by its labels (its fingerprint)."""

    labels: dict[str, str]
    annotations: dict[str, Any] = field(default_factory=dict)
    """`title`, `summary`, `evidence` (dict), `report_url`, `finding_id`…"""
    starts_at_ns: int = 0
    ends_at_ns: int | None = None
    """Set once the condition cleared: the alert is resolved."""

    @property
    def status(self) -> AlertStatus:
        return AlertStatus.FIRING if self.ends_at_ns is None else AlertStatus.RESOLVED

    @property
    def fingerprint(self) -> str:
        """A stable id of the label set (sorted, so label order does not matter)."""
        return label_fingerprint(self.labels)


def label_fingerprint(labels: dict[str, str]) -> str:
    """16 hex digits of SHA-256 over the sorted `name=value` pairs."""
    text = "\x00".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Notification:
    """What one receiver is told about one group at one moment.

    `id` is the idempotency key downstream sees (the webhook-id, the email
    Message-ID, the basis of the PagerDuty dedup key is `group_key`): a re-send of
    the same notification after a crash carries the same id.
    """

    id: str
    receiver: str
    group_key: str
    """Route and group labels: stable for the life of the group (PagerDuty dedup, email thread)."""
    status: AlertStatus
    """Firing while any alert of the group fires; resolved when all have cleared."""
    group_labels: dict[str, str]
    common_labels: dict[str, str]
    alerts: tuple[Alert, ...]
    created_at_ns: int
    dashboard_url: str | None = None

    @property
    def firing(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if a.status is AlertStatus.FIRING)

    @property
    def resolved(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if a.status is AlertStatus.RESOLVED)


class OutcomeKind(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    """Transient (5xx, network, 429): try again, after `retry_after_s` when the receiver said."""
    PERMANENT = "permanent"
    """The receiver refused this payload (400…): dead-letter it, raise a meta-alert."""
    GONE = "gone"
    """The destination no longer exists (Slack 404/410): disable the receiver and say so."""


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    kind: OutcomeKind
    status_code: int | None = None
    detail: str = ""
    """What went wrong, for the delivery log; never contains a secret."""
    retry_after_s: float | None = None
    latency_s: float = 0.0


def notification_to_dict(notification: Notification) -> dict[str, Any]:
    """A notification as JSON-able data, for the outbox row's body."""
    return {
        "id": notification.id,
        "receiver": notification.receiver,
        "group_key": notification.group_key,
        "status": str(notification.status),
        "group_labels": dict(notification.group_labels),
        "common_labels": dict(notification.common_labels),
        "alerts": [
            {
                "labels": dict(alert.labels),
                "annotations": dict(alert.annotations),
                "starts_at_ns": alert.starts_at_ns,
                "ends_at_ns": alert.ends_at_ns,
            }
            for alert in notification.alerts
        ],
        "created_at_ns": notification.created_at_ns,
        "dashboard_url": notification.dashboard_url,
    }


def notification_from_dict(data: dict[str, Any]) -> Notification:
    """The inverse of `notification_to_dict`."""
    return Notification(
        id=data["id"],
        receiver=data["receiver"],
        group_key=data["group_key"],
        status=AlertStatus(data["status"]),
        group_labels=dict(data["group_labels"]),
        common_labels=dict(data["common_labels"]),
        alerts=tuple(
            Alert(
                labels=dict(alert["labels"]),
                annotations=dict(alert["annotations"]),
                starts_at_ns=alert["starts_at_ns"],
                ends_at_ns=alert["ends_at_ns"],
            )
            for alert in data["alerts"]
        ),
        created_at_ns=data["created_at_ns"],
        dashboard_url=data.get("dashboard_url"),
    )
