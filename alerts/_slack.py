"""Slack incoming webhook: one Block Kit message per notification, within Slack's budgets.

Slack refuses a message with more than 50 blocks, a section text over 3,000
characters or a header over 150 (HTTP 400 `invalid_blocks`), so `render` fits the
group into those budgets itself: each alert is one section (its title, summary and
evidence, with `…and N more` when its evidence overflows), and alerts that do not
fit in the block budget become one `…and N more alerts` line. The message ends with
a button to the dashboard.

Answers (https://api.slack.com/messaging/webhooks#handling_errors): 200 with body
`ok` is delivered; 429 is retried after `Retry-After`; 404 and 410 (`no_service`,
`channel_not_found`, `channel_is_archived`) mean the destination is gone and the
receiver should be disabled; other 4xx (`invalid_payload`, `invalid_token`…) are
final for this notification; 5xx and network errors are retried. The webhook URL
is the secret: it never appears in `repr`, errors or outcome details.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from . import _http
from ._model import Alert, AlertStatus, DeliveryOutcome, Notification, OutcomeKind
from ._render import (
    alert_title,
    evidence_lines,
    fit_lines,
    format_labels,
    iso_time,
    ordered_alerts,
    overflow,
    summary,
    title,
    truncate,
)

SLACK_MAX_BLOCKS = 50
SLACK_MAX_SECTION_TEXT = 3000
SLACK_MAX_HEADER_TEXT = 150
SLACK_MAX_BUTTON_URL = 3000
SLACK_MAX_FALLBACK_TEXT = 3000
"""The notification `text` (what phones show); Slack allows more, nobody reads it."""

_STATUS_MARK = {AlertStatus.FIRING: ":red_circle:", AlertStatus.RESOLVED: ":large_green_circle:"}


def escape(text: str) -> str:
    """Slack mrkdwn escaping: only `&`, `<` and `>` have to be entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _alert_text(alert: Alert, limit: int) -> str:
    mark = _STATUS_MARK[alert.status]
    head = f"{mark} *{escape(alert_title(alert))}*"
    lines = [truncate(head, limit)]
    if text := summary(alert):
        lines.append(escape(text))
    lines.extend(f"• {escape(line)}" for line in evidence_lines(alert))
    if alert.ends_at_ns is None:
        lines.append(f"_since {iso_time(alert.starts_at_ns)}_")
    else:
        lines.append(f"_resolved at {iso_time(alert.ends_at_ns)}_")
    return fit_lines(lines, limit)


def _overview(notification: Notification) -> str:
    counts = f"*Firing:* {len(notification.firing)}   *Resolved:* {len(notification.resolved)}"
    labels = notification.common_labels
    if not labels:
        return counts
    return f"{counts}\n*Labels:* {escape(format_labels(labels))}"


class SlackReceiver:
    """POSTs a Block Kit message to a Slack incoming webhook URL."""

    def __init__(
        self,
        *,
        webhook_url: str,
        channel: str | None = None,
        username: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """`channel` and `username` override the webhook's defaults where Slack allows."""
        self._url = _http.validate_url(webhook_url, what="slack webhook_url", https_only=True)
        if channel is not None and not channel.strip():
            raise ValueError("slack channel, when given, must not be blank")
        self._channel = channel
        self._username = username
        self._transport = transport
        self._secrets = (webhook_url,)

    def __repr__(self) -> str:
        return f"SlackReceiver(host={_http.host_of(self._url)!r}, channel={self._channel!r})"

    def render(self, notification: Notification) -> dict[str, Any]:
        """The message: header, overview, one section per alert, overflow, dashboard button."""
        head = title(notification)
        blocks: list[dict[str, Any]] = [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": truncate(head, SLACK_MAX_HEADER_TEXT)},
            },
            _section(truncate(_overview(notification), SLACK_MAX_SECTION_TEXT)),
        ]
        tail: list[dict[str, Any]] = []
        url = notification.dashboard_url
        if url and len(url) <= SLACK_MAX_BUTTON_URL:
            button = {
                "type": "button",
                "text": {"type": "plain_text", "text": "Open dashboard"},
                "url": url,
            }
            tail.append({"type": "actions", "elements": [button]})
        alerts = ordered_alerts(notification)
        room = SLACK_MAX_BLOCKS - len(blocks) - len(tail)
        shown = alerts if len(alerts) <= room else alerts[: room - 1]
        blocks.extend(_section(_alert_text(a, SLACK_MAX_SECTION_TEXT)) for a in shown)
        if len(shown) < len(alerts):
            hidden = alerts[len(shown) :]
            firing = sum(a.status is AlertStatus.FIRING for a in hidden)
            line = f"{overflow(len(hidden), 'more alerts')} ({firing} firing)"
            if url:
                line += f" — <{escape(url)}|see the dashboard>"
            blocks.append(_section(truncate(line, SLACK_MAX_SECTION_TEXT)))
        blocks.extend(tail)
        payload: dict[str, Any] = {
            "text": truncate(head, SLACK_MAX_FALLBACK_TEXT),
            "blocks": blocks,
        }
        if self._channel is not None:
            payload["channel"] = self._channel
        if self._username is not None:
            payload["username"] = self._username
        return payload

    def send(self, notification: Notification, *, timeout_s: float) -> DeliveryOutcome:
        content = json.dumps(self.render(notification), ensure_ascii=False).encode()
        reply = _http.post(
            self._url,
            content=content,
            headers={"content-type": "application/json", "user-agent": "inferloop-alerts"},
            timeout_s=timeout_s,
            secrets=self._secrets,
            transport=self._transport,
        )
        return classify(reply, secrets=self._secrets)


def classify(reply: _http.Reply, *, secrets: tuple[str, ...]) -> DeliveryOutcome:
    code = reply.status_code
    if code is None:
        return _http.network_outcome(reply, secrets=secrets)
    excerpt = _http.body_excerpt(reply)
    kind: OutcomeKind
    if code == 200:
        if excerpt == "ok":
            return _http.outcome(OutcomeKind.DELIVERED, reply, "", secrets=secrets)
        kind, detail = OutcomeKind.PERMANENT, f"HTTP 200 without ok: {excerpt}"
    elif code == 429:
        kind, detail = OutcomeKind.RETRY, f"rate limited: {excerpt}"
    elif code in (404, 410):
        kind, detail = OutcomeKind.GONE, f"slack channel or webhook gone (HTTP {code}): {excerpt}"
    elif code >= 500:
        kind, detail = OutcomeKind.RETRY, f"HTTP {code}: {excerpt}"
    else:
        kind, detail = OutcomeKind.PERMANENT, f"HTTP {code}: {excerpt}"
    return _http.outcome(kind, reply, detail, secrets=secrets, retry=kind is OutcomeKind.RETRY)
