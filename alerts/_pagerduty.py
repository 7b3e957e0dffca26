"""PagerDuty Events API v2: a trigger while the group fires, a resolve when it has cleared.

One incident per group and receiver: `dedup_key` is a hash of (receiver, group_key),
so every re-notification of a group, and every re-send after a crash, updates the
same incident, and the resolve closes it. The event follows
https://developer.pagerduty.com/docs/events-api-v2/trigger-events/: `payload.summary`
at most 1,024 characters, `severity` one of critical, error, warning, info, the
evidence in `custom_details`, the whole event under 512 KB. When the evidence makes
the event too large, alerts are dropped from `custom_details` first (their count
kept), then `custom_details` itself, then the links.

Answers: 202 is accepted; 400 means the event is invalid and will stay so; 429 and
5xx are retried. An optional `RateLimiter` keeps the sender under PagerDuty's
per-routing-key limit (about 120 events a minute) before the request is made. The
routing key never appears in `repr`, errors or outcome details.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import httpx

from . import _http
from ._model import AlertStatus, DeliveryOutcome, Notification, OutcomeKind
from ._ratelimit import RateLimiter
from ._render import (
    alert_title,
    iso_time,
    jsonable,
    ordered_alerts,
    summary,
    title,
    truncate,
)

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
PAGERDUTY_MAX_SUMMARY = 1024
PAGERDUTY_MAX_DEDUP_KEY = 255
PAGERDUTY_MAX_EVENT_BYTES = 512 * 1024
PAGERDUTY_SEVERITIES = ("critical", "error", "warning", "info")
MAX_FIELD = 1024
"""Our own cap on `source`, `component`, `group` and `class` (PagerDuty states none)."""

_SEVERITY_ALIASES = {
    "critical": "critical",
    "page": "critical",
    "p1": "critical",
    "error": "error",
    "high": "error",
    "major": "error",
    "p2": "error",
    "warning": "warning",
    "warn": "warning",
    "medium": "warning",
    "minor": "warning",
    "p3": "warning",
    "info": "info",
    "low": "info",
    "none": "info",
    "p4": "info",
}
DEFAULT_SEVERITY = "warning"


def pagerduty_severity(value: str | None) -> str:
    """A `severity` label as one of PagerDuty's four; unknown or missing → warning."""
    return _SEVERITY_ALIASES.get((value or "").strip().lower(), DEFAULT_SEVERITY)


def dedup_key(receiver: str, group_key: str) -> str:
    """Stable per (receiver, group): 74 characters, well under PagerDuty's 255."""
    digest = hashlib.sha256(f"{receiver}\x00{group_key}".encode()).hexdigest()
    return f"inferloop-{digest}"


def _size(event: dict[str, Any]) -> int:
    return len(_encode(event))


def _encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()


class PagerDutyReceiver:
    """Sends Events API v2 trigger and resolve events for one routing key."""

    def __init__(
        self,
        *,
        routing_key: str,
        events_url: str = PAGERDUTY_EVENTS_URL,
        source: str | None = None,
        rate_limiter: RateLimiter | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """`source`: `payload.source`; the group's `model` label (or "inferloop") when unset."""
        if not isinstance(routing_key, str) or not routing_key:
            raise ValueError("pagerduty routing_key is required")
        if len(routing_key) > 64 or not routing_key.isascii() or not routing_key.isalnum():
            raise ValueError("pagerduty routing_key must be up to 64 letters and digits")
        self._routing_key = routing_key
        self._url = _http.validate_url(events_url, what="pagerduty events_url", https_only=True)
        if source is not None and not source.strip():
            raise ValueError("pagerduty source, when given, must not be blank")
        self._source = source
        self._limiter = rate_limiter
        # The limiter's key: a fingerprint, so the limiter never holds the secret itself.
        self._limit_key = "pagerduty:" + hashlib.sha256(routing_key.encode()).hexdigest()[:16]
        self._transport = transport
        self._secrets = (routing_key,)

    def __repr__(self) -> str:
        return f"PagerDutyReceiver(host={_http.host_of(self._url)!r}, routing_key=<hidden>)"

    def render(self, notification: Notification) -> dict[str, Any]:
        """The event, with the routing key in it (it is the event's address)."""
        key = dedup_key(notification.receiver, notification.group_key)
        if notification.status is AlertStatus.RESOLVED:
            return {"routing_key": self._routing_key, "event_action": "resolve", "dedup_key": key}
        return fit_event(self._trigger(notification, key), notification)

    def _trigger(self, notification: Notification, key: str) -> dict[str, Any]:
        labels = notification.common_labels
        firing = notification.firing or notification.alerts
        titles = ", ".join(dict.fromkeys(alert_title(a) for a in firing))
        text = f"{title(notification)}: {titles}" if titles else title(notification)
        severity = max(
            (pagerduty_severity(a.labels.get("severity")) for a in firing),
            key=PAGERDUTY_SEVERITIES[::-1].index,
            default=pagerduty_severity(labels.get("severity")),
        )
        payload: dict[str, Any] = {
            "summary": truncate(text, PAGERDUTY_MAX_SUMMARY),
            "source": truncate(self._source or labels.get("model") or "inferloop", MAX_FIELD),
            "severity": severity,
            "timestamp": iso_time(min((a.starts_at_ns for a in firing), default=0)),
        }
        for field, label in (("component", "model"), ("group", "environment"), ("class", "kind")):
            if labels.get(label):
                payload[field] = truncate(labels[label], MAX_FIELD)
        payload["custom_details"] = _details(notification, len(notification.alerts))
        event: dict[str, Any] = {
            "routing_key": self._routing_key,
            "event_action": "trigger",
            "dedup_key": key,
            "client": "Inferloop",
            "payload": payload,
        }
        if notification.dashboard_url:
            event["client_url"] = notification.dashboard_url
            event["links"] = [{"href": notification.dashboard_url, "text": "Inferloop dashboard"}]
        return event

    def send(self, notification: Notification, *, timeout_s: float) -> DeliveryOutcome:
        if self._limiter is not None:
            wait = self._limiter.try_acquire(self._limit_key)
            if wait > 0:
                return DeliveryOutcome(
                    OutcomeKind.RETRY, detail="client-side rate limit", retry_after_s=wait
                )
        reply = _http.post(
            self._url,
            content=_encode(self.render(notification)),
            headers={"content-type": "application/json", "user-agent": "inferloop-alerts"},
            timeout_s=timeout_s,
            secrets=self._secrets,
            transport=self._transport,
        )
        return classify(reply, secrets=self._secrets)


def _details(notification: Notification, shown: int) -> dict[str, Any]:
    """`custom_details` with the first `shown` alerts (firing first) and the rest counted."""
    alerts = ordered_alerts(notification)
    return {
        "notification_id": notification.id,
        "firing": len(notification.firing),
        "resolved": len(notification.resolved),
        "group_labels": dict(sorted(notification.group_labels.items())),
        "common_labels": dict(sorted(notification.common_labels.items())),
        "alerts": [
            {
                "title": alert_title(a),
                "status": str(a.status),
                "summary": summary(a),
                "evidence": jsonable(a.annotations.get("evidence")),
                "labels": dict(sorted(a.labels.items())),
                "starts_at": iso_time(a.starts_at_ns),
                "ends_at": iso_time(a.ends_at_ns),
            }
            for a in alerts[:shown]
        ],
        "omitted_alerts": len(alerts) - shown,
    }


def fit_event(
    event: dict[str, Any],
    notification: Notification,
    *,
    limit: int = PAGERDUTY_MAX_EVENT_BYTES,
    size: Callable[[dict[str, Any]], int] = _size,
) -> dict[str, Any]:
    """`event` within `limit` bytes: fewer alerts in the details, then none, then no links."""
    if size(event) <= limit:
        return event
    payload = event["payload"]
    # The most alerts that fit, by bisection: each try serialises the event once.
    low, high = 0, len(notification.alerts) - 1
    best: dict[str, Any] | None = None
    while low <= high:
        middle = (low + high) // 2
        payload["custom_details"] = _details(notification, middle)
        if size(event) <= limit:
            best, low = payload["custom_details"], middle + 1
        else:
            high = middle - 1
    if best is not None:
        payload["custom_details"] = best
        return event
    del payload["custom_details"]
    if size(event) <= limit:
        return event
    event.pop("links", None)
    event.pop("client_url", None)
    return event


def classify(reply: _http.Reply, *, secrets: tuple[str, ...]) -> DeliveryOutcome:
    code = reply.status_code
    if code is None:
        return _http.network_outcome(reply, secrets=secrets)
    if 200 <= code < 300:
        return _http.outcome(OutcomeKind.DELIVERED, reply, "", secrets=secrets)
    detail = f"HTTP {code}: {_reason(reply)}"
    if code == 429 or code >= 500:
        return _http.outcome(OutcomeKind.RETRY, reply, detail, secrets=secrets, retry=True)
    return _http.outcome(OutcomeKind.PERMANENT, reply, detail, secrets=secrets)


def _reason(reply: _http.Reply) -> str:
    """PagerDuty's `message` and `errors`, else the body."""
    try:
        body = json.loads(reply.body)
    except ValueError:
        return _http.body_excerpt(reply)
    if not isinstance(body, dict):
        return _http.body_excerpt(reply)
    errors = body.get("errors") or []
    message = str(body.get("message", ""))
    return "; ".join([message, *map(str, errors)]) if errors else message
