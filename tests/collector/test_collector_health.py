"""The collector's probes over real HTTP: ready only while its last store write and its last
poll succeeded; alive whatever its dependencies do; metrics from the registry it is given."""

from __future__ import annotations

import socket

import httpx
import pytest
from prometheus_client import CollectorRegistry, Gauge

from inferloop.collector.health import CollectorHealth, serve_health


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def served():
    registry = CollectorRegistry()
    Gauge("inferloop_test_gauge", "A gauge only this test registers.", registry=registry).set(3)
    health = CollectorHealth()
    port = _free_port()
    server = serve_health("127.0.0.1", port, registry, health)
    try:
        yield f"http://127.0.0.1:{port}", health
    finally:
        server.shutdown()
        server.server_close()


def test_readiness_follows_the_store_and_the_broker_and_liveness_does_not(served):
    base, health = served
    assert httpx.get(f"{base}/readyz").json() == {"status": "ready"}
    health.store_failed(ConnectionRefusedError("connection refused\nsecond line"))
    answer = httpx.get(f"{base}/readyz")
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
    assert (
        answer.json()["reason"] == "store unavailable: ConnectionRefusedError: connection refused"
    )
    assert httpx.get(f"{base}/healthz").status_code == 200
    health.store_ok()
    health.broker_failed(TimeoutError("no broker"))
    assert httpx.get(f"{base}/readyz").json()["reason"] == (
        "broker unreachable: TimeoutError: no broker"
    )
    health.broker_ok()
    assert httpx.get(f"{base}/readyz").status_code == 200


def test_metrics_come_from_the_registry_and_other_paths_are_404(served):
    base, _health = served
    metrics = httpx.get(f"{base}/metrics")
    assert metrics.status_code == 200 and "inferloop_test_gauge 3.0" in metrics.text
    assert httpx.get(f"{base}/nothing-here").status_code == 404
