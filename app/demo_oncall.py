"""The demo's on-call: a webhook receiver for the platform's alerts that prints each one.

It stands in for Slack or PagerDuty so that the demo shows alerts without any account;
the platform sends to it through the same signed webhook receiver a team would configure
(`type: webhook` in the alerting config), and the demo's summary lists what it got.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request

from .demo_serving import verify_signature

ALERTING_CONFIG = """\
# The demo's alerting: every finding of the fraud model to the demo's on-call webhook.
rules:
  - name: drift
    matchers: ['kind=~".*drift"']
  - name: quality
    matchers: ['kind="quality_drop"']
  - name: rollout
    matchers: ['kind=~"rollout_.*"']
    severity: critical
route:
  receiver: demo-oncall
  group_by: [model, kind]
  group_wait: 1s
  group_interval: 5s
  repeat_interval: 1h
receivers:
  - name: demo-oncall
    type: webhook
    url: {url}
    secret: {secret}
"""


class OnCall:
    """What the demo's on-call received, in order; duplicates (same webhook id) dropped."""

    def __init__(self, *, on_page: Callable[[str], None] = print) -> None:
        self._lock = threading.Lock()
        self.pages: list[dict[str, Any]] = []
        self._seen: set[str] = set()
        self._on_page = on_page

    def receive(self, notification_id: str, document: dict[str, Any]) -> None:
        with self._lock:
            if notification_id in self._seen:
                return
            self._seen.add(notification_id)
            self.pages.append(document)
        for alert in document["alerts"]:
            title = alert["annotations"].get("title") or alert["labels"].get("alertname", "")
            self._on_page(f"on-call: [{alert['status'].upper()}] {title}")

    def statuses(self, kind: str) -> list[str]:
        """The statuses received for alerts of one finding kind, in order."""
        with self._lock:
            return [
                alert["status"]
                for page in self.pages
                for alert in page["alerts"]
                if alert["labels"].get("kind") == kind
            ]


def create_oncall_app(oncall: OnCall, *, secret: str) -> FastAPI:
    app = FastAPI(title="Demo on-call")

    @app.post("/alerts")
    async def alerts(request: Request) -> dict[str, str]:
        body = await request.body()
        verify_signature(secret, request.headers, body)
        oncall.receive(request.headers["webhook-id"], json.loads(body))
        return {"status": "ok"}

    return app


__all__ = ["ALERTING_CONFIG", "OnCall", "create_oncall_app"]
