"""Alerting: findings to on-call engineers, once, with the evidence, and a prompt resolve.

A pure core (rules, routing tree, grouping, inhibition, silences, on an injected
clock) decides what each receiver must be told; receivers (Slack, PagerDuty,
signed webhooks, email) render and send one notification each.
"""

from ._model import (
    Alert,
    AlertStatus,
    DeliveryOutcome,
    Notification,
    OutcomeKind,
    label_fingerprint,
)

__all__ = [
    "Alert",
    "AlertStatus",
    "DeliveryOutcome",
    "Notification",
    "OutcomeKind",
    "label_fingerprint",
]
