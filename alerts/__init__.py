"""Alerting: findings to on-call engineers, once, with the evidence, and a prompt resolve.

A pure core (rules, routing tree, grouping, inhibition, silences, on an injected
clock) decides what each receiver must be told; receivers (Slack, PagerDuty,
signed webhooks, email) render and send one notification each.
"""

from ._backoff import RetryPolicy, next_attempt_ns
from ._dispatcher import Dispatcher, Receiver, outbox_row
from ._email import EmailReceiver
from ._model import (
    Alert,
    AlertStatus,
    DeliveryOutcome,
    Notification,
    OutcomeKind,
    label_fingerprint,
    notification_from_dict,
    notification_to_dict,
)
from ._pagerduty import PagerDutyReceiver
from ._ratelimit import RateLimiter
from ._slack import SlackReceiver
from ._webhook import WebhookReceiver

__all__ = [
    "Alert",
    "AlertStatus",
    "DeliveryOutcome",
    "Dispatcher",
    "EmailReceiver",
    "Notification",
    "OutcomeKind",
    "PagerDutyReceiver",
    "RateLimiter",
    "Receiver",
    "RetryPolicy",
    "SlackReceiver",
    "WebhookReceiver",
    "label_fingerprint",
    "next_attempt_ns",
    "notification_from_dict",
    "notification_to_dict",
    "outbox_row",
]
