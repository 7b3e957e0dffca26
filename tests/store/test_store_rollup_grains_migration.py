"""Migration 0009_rollup_grains on a store that already holds rollups and events: every
minute row gets its histogram's percentiles and its events' GPU time, every hour a row
equal to its minutes, over more rows than one backfill batch; and it reverses."""

from __future__ import annotations

import json
import random

import orjson
import sqlalchemy as sa

from inferloop.store import create_engine_for, current, downgrade, upgrade
from inferloop.store.sketch import bucket_counts, merge_into, percentiles

HOUR_S = 3600
_NS = 1_000_000_000


def _seed_old_store(engine, start_s: int) -> None:
    """Minute rows as 0008 wrote them (two series, 2,700 minutes each: 5,400 rows, more
    than one backfill batch), and raw events with GPU time in the first series' minutes."""
    rng = random.Random(3)
    minutes, events = [], []
    for model, version in (("fraud", "1"), ("ranker", "2")):
        for minute in range(2_700):
            latencies = [rng.randint(1_000_000, 50_000_000) for _ in range(rng.randint(1, 6))]
            minutes.append(
                {
                    "model": model,
                    "version": version,
                    "minute_start_s": start_s + 60 * minute,
                    "count": len(latencies),
                    "errors": len(latencies) // 3,
                    "latency_sum_ns": sum(latencies),
                    "latency_max_ns": max(latencies),
                    "histogram": json.dumps(bucket_counts(latencies)),
                }
            )
    for k in range(300):
        events.append(
            {
                "event_id": f"e{k:031d}",
                "seq": k,
                "start_time_ns": (start_s + 60 * (k // 3)) * _NS + k,
                "latency_ns": 5_000_000,
                "device_time_ns": None if k % 3 == 2 else 1_000_000 + k,
                "prediction_id": f"p{k}",
            }
        )
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO minute_rollups (model, version, minute_start_s, count, errors,"
                " latency_sum_ns, latency_max_ns, histogram) VALUES (:model, :version,"
                " :minute_start_s, :count, :errors, :latency_sum_ns, :latency_max_ns, :histogram)"
            ),
            minutes,
        )
        connection.execute(
            sa.text(
                "INSERT INTO events (event_id, emitter_id, seq, model, version, environment,"
                " start_time_ns, latency_ns, device_time_ns, status, batch_size, device,"
                " prediction_id, tags, received_at_ns) VALUES (:event_id, 'em', :seq, 'fraud',"
                " '1', 'prod', :start_time_ns, :latency_ns, :device_time_ns, 'ok', 1, 'cuda',"
                " :prediction_id, '{}', 0)"
            ),
            events,
        )


def _histogram(value) -> dict[str, int]:
    return value if isinstance(value, dict) else orjson.loads(value)


def test_the_backfill_fills_minutes_and_builds_hours_from_them(database_url):
    upgrade(database_url, "0008_drift_cells")
    start_s = 1_767_225_600 + 1_800  # half past: the first and last hours are partial
    engine = create_engine_for(database_url)
    try:
        _seed_old_store(engine, start_s)
        upgrade(database_url)
        assert current(database_url) == "0009_rollup_grains"
        with engine.connect() as connection:
            minutes = connection.execute(sa.text("SELECT * FROM minute_rollups")).all()
            hours = connection.execute(sa.text("SELECT * FROM hour_rollups")).all()
    finally:
        engine.dispose()

    assert len(minutes) == 5_400
    for row in minutes:
        assert (row.p50_ns, row.p95_ns, row.p99_ns) == percentiles(_histogram(row.histogram))
    gpu = {row.minute_start_s: row for row in minutes if row.model == "fraud"}
    assert (gpu[start_s].device_count, gpu[start_s].device_time_sum_ns) == (2, 2_000_001)
    assert gpu[start_s].device_time_max_ns == 1_000_001
    assert sum(row.device_count for row in minutes) == 200
    assert all(row.device_count == 0 for row in minutes if row.model == "ranker")

    assert len(hours) == 2 * 46  # 2,700 minutes from half past: 45 hours and two halves
    for hour in hours:
        inside = [
            m
            for m in minutes
            if (m.model, m.version) == (hour.model, hour.version)
            and hour.hour_start_s <= m.minute_start_s < hour.hour_start_s + HOUR_S
        ]
        assert hour.count == sum(m.count for m in inside)
        assert hour.errors == sum(m.errors for m in inside)
        assert hour.latency_sum_ns == sum(m.latency_sum_ns for m in inside)
        assert hour.latency_max_ns == max(m.latency_max_ns for m in inside)
        assert hour.device_count == sum(m.device_count for m in inside)
        assert hour.device_time_max_ns == max(m.device_time_max_ns for m in inside)
        merged: dict[str, int] = {}
        for m in inside:
            merge_into(merged, _histogram(m.histogram))
        assert _histogram(hour.histogram) == merged
        assert (hour.p50_ns, hour.p95_ns, hour.p99_ns) == percentiles(merged)


def test_the_downgrade_drops_the_hours_and_the_new_columns(database_url):
    upgrade(database_url)
    downgrade(database_url, "0008_drift_cells")
    engine = create_engine_for(database_url)
    try:
        inspector = sa.inspect(engine)
        assert "hour_rollups" not in inspector.get_table_names()
        columns = {c["name"] for c in inspector.get_columns("minute_rollups")}
        assert columns == {
            "model",
            "version",
            "minute_start_s",
            "count",
            "errors",
            "latency_sum_ns",
            "latency_max_ns",
            "histogram",
        }
    finally:
        engine.dispose()
    upgrade(database_url)
    assert current(database_url) == "0009_rollup_grains"
