"""Prometheus export of `stats()` when prometheus_client is installed (read at scrape time)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_registered: Any = None


class _StatsCollector:
    def __init__(self, read_stats: Callable[[], dict[str, Any] | None]) -> None:
        self._read_stats = read_stats

    def describe(self) -> list[Any]:
        return []  # unchecked collector: metrics appear once the SDK is configured

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        stats = self._read_stats()
        if stats is None:
            return
        for name, doc in (
            ("enqueued", "Events put on the SDK queue."),
            ("sent", "Events delivered by the transport."),
            ("failed", "Events the transport refused for good or gave up on."),
            ("retried", "Transport send attempts that failed and were retried."),
            ("batches", "Batches delivered by the transport."),
            ("internal_errors", "Errors inside the SDK (never raised to the caller)."),
        ):
            yield CounterMetricFamily(f"inferloop_sdk_{name}", doc, value=stats[name])
        dropped = CounterMetricFamily(
            "inferloop_sdk_dropped", "Events dropped by the SDK.", labels=["reason"]
        )
        for reason, count in sorted(stats["dropped"].items()):
            dropped.add_metric([reason], count)
        yield dropped
        yield GaugeMetricFamily(
            "inferloop_sdk_queue_depth",
            "Records waiting on the SDK queue.",
            value=stats["queue_depth"],
        )
        yield GaugeMetricFamily(
            "inferloop_sdk_buffered_events",
            "Serialised events awaiting delivery.",
            value=stats["buffered"],
        )


def register(read_stats: Callable[[], dict[str, Any] | None]) -> bool:
    """Register once on the default registry; False when prometheus_client is missing."""
    global _registered
    if _registered is not None:
        return True
    try:
        from prometheus_client import REGISTRY
    except ImportError:
        return False
    collector = _StatsCollector(read_stats)
    REGISTRY.register(collector)
    _registered = collector
    return True
