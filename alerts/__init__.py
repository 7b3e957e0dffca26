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
from ._explain import RouteReach, explain
from ._explain_stored import explain_now
from ._matchers import MatcherError, parse_matchers
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
from ._receivers import build_rate_limits, build_receiver, build_receivers
from ._rules import EVERY_FINDING, Rule, effective_rules
from ._silence_admin import (
    SilenceExpired,
    UnknownSilence,
    add_silence,
    edit_stored_silence,
    expire_stored_silence,
    silence_end_ns,
    silence_state,
    stored_silence,
    stored_silences,
)
from ._silences import Silence, SilenceError
from ._slack import SlackReceiver
from ._webhook import WebhookReceiver

__all__ = [
    "EVERY_FINDING",
    "Alert",
    "AlertEvaluator",
    "AlertMetrics",
    "AlertStatus",
    "AlertingConfig",
    "ConfigError",
    "DeliveryOutcome",
    "Dispatcher",
    "EmailReceiver",
    "MatcherError",
    "Notification",
    "OutcomeKind",
    "PagerDutyReceiver",
    "RateLimiter",
    "Receiver",
    "RetryPolicy",
    "RouteReach",
    "Rule",
    "Silence",
    "SilenceError",
    "SilenceExpired",
    "SlackReceiver",
    "UnknownSilence",
    "WebhookReceiver",
    "add_silence",
    "build_rate_limits",
    "build_receiver",
    "build_receivers",
    "edit_stored_silence",
    "effective_rules",
    "expire_stored_silence",
    "explain",
    "explain_now",
    "label_fingerprint",
    "load_config",
    "next_attempt_ns",
    "notification_from_dict",
    "notification_to_dict",
    "outbox_row",
    "parse_matchers",
    "silence_end_ns",
    "silence_state",
    "stored_silence",
    "stored_silences",
]
