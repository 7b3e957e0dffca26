"""The demo's serving side: a FastAPI app serving the torch model through `@monitor`, the way
a team's own serving code would, and following the platform's requests.

It knows nothing of the platform's insides. Events leave through the SDK; the platform's
feedback requests arrive as signed CloudEvents on `POST /platform/events` (Standard Webhooks,
the same signature the platform's webhook destination makes): a redeploy request loads the
candidate build next to the live one and gives it half the traffic, a rollback request drops
it, and a promotion makes it the only build. Everything else (retrain requests, which the
demo's trainer handles) is acknowledged and ignored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, HTTPException, Request

from .demo_model import FraudService, load_build

MODEL = "fraud"
ENVIRONMENT = "demo"
CANDIDATE_SHARE = 0.5

REDEPLOY = "io.inferloop.model.redeploy.requested"
ROLLBACK = "io.inferloop.model.rollback.requested"
PROMOTED = "io.inferloop.model.promote.requested"


@dataclass(frozen=True)
class Build:
    """One loaded version: the service and its monitored `predict`."""

    version: int
    predict: Callable[[dict], float]
    extra_latency_ms: float = 0.0


def monitored_build(version: int, service: FraudService) -> Build:
    """Wrap a service's `predict` in `@monitor` for its version, as serving code does."""
    from inferloop.sdk import monitor

    predict = monitor(model=MODEL, version=str(version), environment=ENVIRONMENT)(service.predict)
    return Build(version=version, predict=predict, extra_latency_ms=service.extra_latency_ms)


class Deployment:
    """Which builds serve: the live one, and a candidate on a share of the traffic.

    Requests are split by a hash of their id, so each arm sees the same kind of traffic
    in the same window, which is what the guard compares.
    """

    def __init__(self, live: Build, *, on_change: Callable[[str], None] = print) -> None:
        self._lock = threading.Lock()
        self.live = live
        self.candidate: Build | None = None
        self._on_change = on_change

    def route(self, request_key: int) -> Build:
        with self._lock:
            candidate = self.candidate
            if candidate is not None and (request_key % 1000) < CANDIDATE_SHARE * 1000:
                return candidate
            return self.live

    def load_candidate(self, build: Build) -> None:
        with self._lock:
            self.candidate = build
        self._on_change(
            f"serving: candidate v{build.version} loaded next to live v{self.live.version}"
            f" ({CANDIDATE_SHARE:.0%} of traffic)"
        )

    def drop_candidate(self, version: int) -> None:
        with self._lock:
            dropped = self.candidate is not None and self.candidate.version == version
            if dropped:
                self.candidate = None
        if dropped:
            self._on_change(
                f"serving: candidate v{version} taken out; v{self.live.version} serves all"
            )

    def promote(self, version: int) -> None:
        with self._lock:
            promoted = self.candidate is not None and self.candidate.version == version
            if promoted:
                self.live, self.candidate = self.candidate, None
        if promoted:
            self._on_change(f"serving: v{version} promoted; it now serves all traffic")

    def versions(self) -> dict[str, int | None]:
        with self._lock:
            return {
                "live": self.live.version,
                "candidate": self.candidate.version if self.candidate else None,
            }


def verify_signature(secret: str, headers: Any, body: bytes) -> None:
    """Check a Standard Webhooks signature; raise 401 when it does not match."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers.get('webhook-id')}.{headers.get('webhook-timestamp')}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [part.removeprefix("v1,") for part in headers.get("webhook-signature", "").split()]
    if not any(hmac.compare_digest(expected, candidate) for candidate in offered):
        raise HTTPException(401, "webhook signature does not match")


def create_serving_app(deployment: Deployment, *, webhook_secret: str) -> FastAPI:
    """The demo model's HTTP API: `POST /predict`, and the platform's requests."""
    from inferloop.sdk import last_prediction_id

    app = FastAPI(title="Fraud model (Inferloop demo)")
    applied: set[str] = set()  # event ids already acted on: the platform may redeliver

    @app.post("/predict")
    def predict(request: dict[str, Any]) -> dict[str, Any]:
        features = {key: value for key, value in request.items() if key != "request_key"}
        build = deployment.route(int(request.get("request_key", 0)))
        try:
            score = build.predict(features)
        except ValueError as error:
            raise HTTPException(422, str(error)) from None
        return {"score": score, "version": build.version, "prediction_id": last_prediction_id()}

    @app.get("/versions")
    def versions() -> dict[str, int | None]:
        return deployment.versions()

    @app.post("/platform/events")
    async def platform_event(request: Request) -> dict[str, str]:
        body = await request.body()
        verify_signature(webhook_secret, request.headers, body)
        event = json.loads(body)
        if event["id"] in applied:
            return {"status": "duplicate"}
        data = event.get("data") or {}
        if data.get("model") == MODEL:
            _apply(event["type"], data)
        applied.add(event["id"])
        return {"status": "ok"}

    def _apply(kind: str, data: dict[str, Any]) -> None:
        if kind not in (REDEPLOY, ROLLBACK, PROMOTED):
            return  # retrain requests are the trainer's
        version = int(data["version"])
        if kind == REDEPLOY:
            deployment.load_candidate(monitored_build(version, load_build(data["artifact_uri"])))
        elif kind == ROLLBACK:
            deployment.drop_candidate(version)
        elif kind == PROMOTED:
            deployment.promote(version)

    return app


__all__ = [
    "MODEL",
    "Build",
    "Deployment",
    "create_serving_app",
    "monitored_build",
    "verify_signature",
]
