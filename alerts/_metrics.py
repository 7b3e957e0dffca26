"""Prometheus metrics of alerting: how fast findings reach people, and what still waits."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine

from inferloop.store.outbox import pending_summary

NS = 1_000_000_000


class AlertMetrics:
    """Delivery counters and the finding-to-delivery latency, on a registry passed in."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.attempts = Counter(
            "inferloop_alert_delivery_attempts",
            "Delivery attempts, by receiver and outcome (delivered, retry, permanent, gone).",
            ["receiver", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "inferloop_alert_delivery_latency_seconds",
            "From the state change a notification reports (a finding opened or resolved) "
            "to the receiver's acknowledgement.",
            ["receiver", "status"],
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600),
            registry=self.registry,
        )

    def watch_outbox(self, engine: Engine, clock: Callable[[], int] = time.time_ns) -> None:
        """Also export the outbox's backlog, read from the store at each scrape."""
        self.registry.register(_OutboxCollector(engine, clock))


class _OutboxCollector(Collector):
    def __init__(self, engine: Engine, clock: Callable[[], int]) -> None:
        self.engine, self.clock = engine, clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.engine.connect() as connection:
            summary = pending_summary(connection)
        yield GaugeMetricFamily(
            "inferloop_alert_notifications_pending",
            "Notifications queued and not yet delivered or given up.",
            value=summary.count,
        )
        age = 0.0 if summary.oldest_created_ns is None else self.clock() - summary.oldest_created_ns
        yield GaugeMetricFamily(
            "inferloop_alert_oldest_pending_seconds",
            "Age of the oldest notification still waiting (0 when none waits).",
            value=max(age, 0.0) / NS,
        )


def reported_change_ns(body: dict) -> int | None:
    """When the state change a notification body reports happened: the latest start of
    its firing alerts, or the latest end of its resolved ones."""
    alerts = body.get("alerts") or []
    if body.get("status") == "resolved":
        ends = [a.get("ends_at_ns") for a in alerts if a.get("ends_at_ns")]
        return max(ends) if ends else None
    starts = [a.get("starts_at_ns") for a in alerts if a.get("ends_at_ns") is None]
    return max(starts) if starts else None
