"""The collector's own HTTP endpoint: `/metrics` for Prometheus, `/readyz` and `/healthz`
for an orchestrator's probes.

The collector has no API, so without this a store outage showed only as a gauge. Ready
means the last attempt to store a batch succeeded and the last poll of the broker did not
fail; a collector that is alive but not ready keeps its batch and commits nothing, so a
probe restarting it would only lose its place in the consumer group (point liveness at
`/healthz`, which answers while the process runs).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = ["CollectorHealth", "serve_health"]

RETRY_AFTER_S = 1


class CollectorHealth:
    """The state of the collector's two dependencies as its loop last saw them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._store_error: str | None = None
        self._broker_error: str | None = None

    def store_failed(self, error: BaseException) -> None:
        with self._lock:
            self._store_error = f"{type(error).__name__}: {error}".splitlines()[0]

    def store_ok(self) -> None:
        with self._lock:
            self._store_error = None

    def broker_failed(self, error: BaseException) -> None:
        with self._lock:
            self._broker_error = f"{type(error).__name__}: {error}".splitlines()[0]

    def broker_ok(self) -> None:
        with self._lock:
            self._broker_error = None

    def not_ready_because(self) -> str | None:
        """Why the collector cannot ingest now, or None when it can."""
        with self._lock:
            if self._store_error is not None:
                return f"store unavailable: {self._store_error}"
            if self._broker_error is not None:
                return f"broker unreachable: {self._broker_error}"
        return None


def serve_health(
    host: str, port: int, registry: CollectorRegistry, health: CollectorHealth
) -> ThreadingHTTPServer:
    """Serve `/metrics`, `/readyz` and `/healthz` on a daemon thread; the caller shuts the
    returned server down."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._answer(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._json(200, {"status": "alive"})
            elif path == "/readyz":
                reason = health.not_ready_because()
                if reason is None:
                    self._json(200, {"status": "ready"})
                else:
                    self._json(503, {"status": "unavailable", "reason": reason})
            else:
                self._json(404, {"detail": "the collector serves /metrics, /readyz, /healthz"})

        def _json(self, status: int, body: dict[str, Any]) -> None:
            self._answer(status, json.dumps(body).encode(), "application/json")

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if status == 503:
                self.send_header("Retry-After", str(RETRY_AFTER_S))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:  # probes every few seconds: not worth a line
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(
        target=server.serve_forever, name="inferloop-collector-http", daemon=True
    ).start()
    return server
