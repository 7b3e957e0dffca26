"""Prometheus metrics of the ingest path, registered on a registry passed in."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class IngestMetrics:
    """Counters and timings shared by the Kafka collector and the HTTP endpoint."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.events = Counter(
            "inferloop_ingest_events",
            "Events and labels handled, by input and outcome (stored, duplicate).",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "inferloop_ingest_dead_letters",
            "Messages or events refused into the dead-letter table/topic.",
            ["source"],
            registry=self.registry,
        )
        self.messages = Counter(
            "inferloop_ingest_messages",
            "Batch messages (Kafka records or HTTP bodies) processed.",
            ["source"],
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "inferloop_ingest_batch_seconds",
            "Time to validate and store one ingest batch, commit included.",
            ["source"],
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        # Labelled per input and set only by an input that writes, so a process shows the
        # series of the inputs it runs (the collector: kafka; the server: http).
        self.store_up = Gauge(
            "inferloop_ingest_store_up",
            "1 while the store takes this input's writes; 0 while they fail and are retried.",
            ["source"],
            registry=self.registry,
        )
        self.store_unavailable = Counter(
            "inferloop_ingest_store_unavailable",
            "Attempts to store a batch that failed for want of the store (nothing stored).",
            ["source"],
            registry=self.registry,
        )
        self.consumer_lag = Gauge(
            "inferloop_collector_lag",
            "Messages between the collector's position and the partition's end.",
            ["topic", "partition"],
            registry=self.registry,
        )
