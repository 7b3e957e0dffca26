"""Rollup percentiles, completeness and retention, on both databases."""

from __future__ import annotations

import time

import numpy as np
import pytest
import sqlalchemy as sa
from ingest_events import MINUTE_NS, EventFactory
from waiting import wait_for

from inferloop.collector import IngestPipeline, InputMessage
from inferloop.store import (
    completeness,
    latency_summary,
    minute_series,
    prune_raw_events,
)


def _ingest(engine, factory: EventFactory, events: list[dict], chunk: int = 500) -> None:
    pipeline = IngestPipeline(engine)
    messages = [
        InputMessage(factory.batch_bytes(events[i : i + chunk]))
        for i in range(0, len(events), chunk)
    ]
    pipeline.ingest(messages, source="http")


def test_percentiles_from_rollups_are_within_one_percent_of_exact(migrated_engine):
    rng = np.random.default_rng(7)
    factory = EventFactory(model="ranker", version="v3")
    start = factory.base_time_ns
    # Heavy-tailed latencies over 7 minutes, with the slow tail late: merging matters.
    latencies = np.concatenate(
        [rng.lognormal(np.log(4e6), 0.6, 15_000), rng.lognormal(np.log(40e6), 0.9, 3_000)]
    ).astype(np.int64)
    times = start + np.sort(rng.integers(0, 7 * MINUTE_NS, latencies.size))
    events = [
        factory.inference(latency_ns=int(lat), start_time_ns=int(t))
        for lat, t in zip(latencies, times, strict=True)
    ]
    _ingest(migrated_engine, factory, events)

    with migrated_engine.connect() as connection:
        raw = np.array(connection.execute(sa.text("SELECT latency_ns FROM events")).scalars().all())
        qs = (0.5, 0.9, 0.95, 0.99, 0.999)
        summary = latency_summary(
            connection,
            "ranker",
            start_s=start // 10**9,
            end_s=start // 10**9 + 7 * 60,
            qs=qs,
        )
        series = minute_series(
            connection, "ranker", start_s=start // 10**9, end_s=start // 10**9 + 7 * 60
        )
    assert summary.count == latencies.size == raw.size
    exact = np.quantile(raw, qs, method="lower")
    for q, expected in zip(qs, exact, strict=True):
        estimate = summary.quantiles_ns[q]
        assert abs(estimate - expected) / expected <= 0.01, (q, estimate, expected)
    assert summary.max_ns == latencies.max()
    assert sum(point.count for point in series) == latencies.size
    assert len(series) == 7


def test_completeness_counts_sequence_gaps_and_sdk_reported_drops(migrated_engine):
    factory = EventFactory(model="scorer")
    first = [factory.inference() for _ in range(10)]
    factory.skip(5)  # lost in transit
    second = [factory.inference() for _ in range(10)]
    second[0]["dropped"] = {"queue_full": 7}
    factory.skip(3)
    third = [factory.inference() for _ in range(5)]
    other = EventFactory(model="other", emitter_id=factory.emitter_id)
    _ingest(migrated_engine, factory, first + second)
    _ingest(migrated_engine, factory, third)
    _ingest(migrated_engine, other, [other.inference()])

    start = factory.base_time_ns
    with migrated_engine.connect() as connection:
        result = completeness(connection, "scorer", start_ns=start, end_ns=start + MINUTE_NS)
        elsewhere = completeness(connection, "other", start_ns=start, end_ns=start + MINUTE_NS)
    assert result.received == 25
    assert result.lost == 8
    assert result.received_share == pytest.approx(25 / 33)
    assert result.sdk_dropped == {"queue_full": 7}
    assert elsewhere.lost == 0


def test_redelivery_does_not_count_drops_twice(migrated_engine):
    factory = EventFactory(model="scorer")
    event = factory.inference(dropped={"queue_full": 4})
    _ingest(migrated_engine, factory, [event])
    _ingest(migrated_engine, factory, [event])
    start = factory.base_time_ns
    with migrated_engine.connect() as connection:
        result = completeness(connection, "scorer", start_ns=start, end_ns=start + MINUTE_NS)
    assert result.sdk_dropped == {"queue_full": 4}
    assert result.received == 1


def test_retention_prunes_old_raw_events_but_keeps_rollups(migrated_engine):
    factory = EventFactory(model="aging")
    old = [factory.inference(start_time_ns=factory.base_time_ns - 30 * 86_400 * 10**9)]
    recent = [factory.inference() for _ in range(3)]
    _ingest(migrated_engine, factory, old + recent)

    deleted = prune_raw_events(migrated_engine, older_than_days=14)

    with migrated_engine.connect() as connection:
        remaining = connection.scalar(sa.text("SELECT count(*) FROM events"))
        rolled_up = connection.scalar(sa.text("SELECT sum(count) FROM minute_rollups"))
    assert (deleted, remaining, rolled_up) == (1, 3, 4)


def test_retention_worker_prunes_on_start_and_stops_promptly(migrated_engine):
    from inferloop.store import RetentionWorker

    factory = EventFactory(model="aging")
    old = factory.inference(start_time_ns=factory.base_time_ns - 30 * 86_400 * 10**9)
    _ingest(migrated_engine, factory, [old, factory.inference()])
    worker = RetentionWorker(migrated_engine, older_than_days=14, interval_s=3600)
    worker.start()
    wait_for(lambda: _count_events(migrated_engine) == 1, timeout=30, what="the worker to prune")
    started = time.monotonic()
    worker.stop()
    assert time.monotonic() - started < 5


def _count_events(engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(sa.text("SELECT count(*) FROM events"))
