"""Alerting: findings to on-call engineers, once, with the evidence, and a prompt resolve.

A pure core (rules, routing tree, grouping, inhibition, silences, on an injected
clock) decides what each receiver must be told; receivers (Slack, PagerDuty,
signed webhooks, email) render and send one notification each.
"""

from ._backoff import RetryPolicy, next_attempt_ns
from ._config import AlertingConfig, ConfigError, load_config
from ._dispatcher import Dispatcher, Receiver, outbox_row
from ._email import EmailReceiver
from ._evaluator import AlertEvaluator
from ._metrics import AlertMetrics
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
from ._receivers import build_receiver, build_receivers
from ._slack import SlackReceiver
from ._webhook import WebhookReceiver

__all__ = [
    "Alert",
    "AlertEvaluator",
    "AlertMetrics",
    "AlertStatus",
    "AlertingConfig",
    "ConfigError",
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
    "build_receiver",
    "build_receivers",
    "label_fingerprint",
    "load_config",
    "next_attempt_ns",
    "notification_from_dict",
    "notification_to_dict",
    "outbox_row",
]
