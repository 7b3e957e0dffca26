"""Generic webhook: one signed JSON POST per notification, per the Standard Webhooks scheme.

The body (version 1) is documented field by field in `WebhookReceiver.render`. Every
request carries three headers (https://www.standardwebhooks.com):

- `webhook-id`: the notification id, the same on every re-send, so the consumer
  can drop duplicates after a dispatcher crash;
- `webhook-timestamp`: unix seconds from the injected clock, so a consumer can
  refuse replays outside its tolerance;
- `webhook-signature`: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` keyed
  with the base64-decoded part of a `whsec_…` secret. During a rotation the
  receiver holds two secrets and sends both signatures, space-separated, so the
  consumer can switch keys at its own pace.

The URL and the secrets never appear in `repr`, in errors or in outcome details.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from . import _http
from ._model import DeliveryOutcome, Notification, OutcomeKind
from ._render import iso_time, jsonable, ordered_alerts

WEBHOOK_PAYLOAD_VERSION = "1"
SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
"""The key sizes Standard Webhooks recommends."""


def decode_secret(secret: str) -> bytes:
    """The HMAC key inside a `whsec_<base64>` secret; the error never repeats the secret."""
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a webhook secret must start with {SECRET_PREFIX!r}")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret must be whsec_ followed by base64") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(
            f"a webhook secret must decode to {MIN_SECRET_BYTES}-{MAX_SECRET_BYTES} bytes"
        )
    return key


def sign(keys: Sequence[bytes], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: one `v1,<base64>` per key, space-separated."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        for key in keys
    )


class WebhookReceiver:
    """POSTs a signed JSON document to a URL; 2xx is delivered."""

    def __init__(
        self,
        *,
        url: str,
        secrets: Sequence[str],
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """`secrets`: one `whsec_…` secret, or two (new first) while rotating."""
        self._url = _http.validate_url(url, what="webhook url")
        if isinstance(secrets, str):
            raise TypeError("secrets must be a sequence of whsec_ secrets, not one string")
        secrets = tuple(secrets)
        if not 1 <= len(secrets) <= 2:
            raise ValueError("a webhook takes one secret, or two during a rotation")
        self._keys = tuple(decode_secret(s) for s in secrets)
        self._secrets = (url, *secrets)
        self._clock = clock
        self._transport = transport

    def __repr__(self) -> str:
        return (
            f"WebhookReceiver(host={_http.host_of(self._url)!r}, "
            f"secrets=<{len(self._keys)} hidden>)"
        )

    def render(self, notification: Notification) -> dict[str, Any]:
        """The JSON document, version 1.

        `version` ("1"); `id` (the notification id, also `webhook-id`); `receiver`;
        `status` ("firing" or "resolved": the group's); `group_key` (stable for the
        life of the group); `group_labels` and `common_labels`; `dashboard_url` (or
        null); `created_at` (RFC 3339, UTC); `alerts`: each with `fingerprint`,
        `status`, `labels`, `annotations` (title, summary, evidence…), `starts_at`
        and `ends_at` (null while firing). Alerts are listed firing first.
        """
        return {
            "version": WEBHOOK_PAYLOAD_VERSION,
            "id": notification.id,
            "receiver": notification.receiver,
            "status": str(notification.status),
            "group_key": notification.group_key,
            "group_labels": dict(sorted(notification.group_labels.items())),
            "common_labels": dict(sorted(notification.common_labels.items())),
            "dashboard_url": notification.dashboard_url,
            "created_at": iso_time(notification.created_at_ns),
            "alerts": [
                {
                    "fingerprint": alert.fingerprint,
                    "status": str(alert.status),
                    "labels": dict(sorted(alert.labels.items())),
                    "annotations": jsonable(alert.annotations),
                    "starts_at": iso_time(alert.starts_at_ns),
                    "ends_at": iso_time(alert.ends_at_ns),
                }
                for alert in ordered_alerts(notification)
            ],
        }

    def body(self, notification: Notification) -> bytes:
        """The exact bytes sent and signed: compact UTF-8 JSON."""
        return json.dumps(
            self.render(notification), ensure_ascii=False, separators=(",", ":")
        ).encode()

    def headers(self, notification: Notification, body: bytes, timestamp: int) -> dict[str, str]:
        return {
            "content-type": "application/json",
            "user-agent": "inferloop-alerts",
            "webhook-id": notification.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self._keys, notification.id, timestamp, body),
        }

    def send(self, notification: Notification, *, timeout_s: float) -> DeliveryOutcome:
        body = self.body(notification)
        timestamp = int(self._clock())
        reply = _http.post(
            self._url,
            content=body,
            headers=self.headers(notification, body, timestamp),
            timeout_s=timeout_s,
            secrets=self._secrets,
            transport=self._transport,
        )
        return classify(reply, secrets=self._secrets)


def classify(reply: _http.Reply, *, secrets: Sequence[str]) -> DeliveryOutcome:
    """2xx delivered; 408, 429 and 5xx retried (429 after `Retry-After`); other codes final."""
    code = reply.status_code
    if code is None:
        return _http.network_outcome(reply, secrets=secrets)
    excerpt = _http.body_excerpt(reply)
    if 200 <= code < 300:
        return _http.outcome(OutcomeKind.DELIVERED, reply, "", secrets=secrets)
    if code == 429:
        return _http.outcome(
            OutcomeKind.RETRY, reply, f"rate limited: {excerpt}", secrets=secrets, retry=True
        )
    if code == 408 or code >= 500:
        return _http.outcome(
            OutcomeKind.RETRY, reply, f"HTTP {code}: {excerpt}", secrets=secrets, retry=True
        )
    return _http.outcome(OutcomeKind.PERMANENT, reply, f"HTTP {code}: {excerpt}", secrets=secrets)
