"""Minute rows keep their percentiles and GPU time, hour rows are the sum of their minutes,
and a redelivered batch adds to neither (both back ends, through the ingest pipeline)."""

from __future__ import annotations

import threading

import numpy as np
import orjson
import pytest
import sqlalchemy as sa
from ingest_events import MINUTE_NS, EventFactory

from inferloop.collector import IngestPipeline
from inferloop.collector.pipeline import InputMessage
from inferloop.collector.rollups import derive_figures
from inferloop.store.sketch import bucket_counts, merge_into, percentiles, quantiles

HOUR_S = 3600


def _histogram(value) -> dict[str, int]:
    return value if isinstance(value, dict) else orjson.loads(value)


def _rows(engine, table: str, time_column: str) -> dict[tuple, dict]:
    with engine.connect() as connection:
        return {
            (row.model, row.version, row._mapping[time_column]): dict(row._mapping)
            | {"histogram": _histogram(row.histogram)}
            for row in connection.execute(sa.text(f"SELECT * FROM {table}"))
        }


def _events(factory: EventFactory, start_s: int, minutes: int, per_minute: int) -> list[dict]:
    """Calls across `minutes` minutes from `start_s`; every third measured GPU time."""
    return [
        factory.inference(
            start_time_ns=(start_s + minute * 60) * 1_000_000_000 + k * 1_000_000,
            latency_ns=1_000_000 + (minute * 31 + k * 7919) % 9_000_000,
            device_time_ns=400_000 + k * 1_000 if k % 3 == 0 else None,
            status="error" if k % 11 == 0 else "ok",
        )
        for minute in range(minutes)
        for k in range(per_minute)
    ]


def _row(e: dict) -> tuple:
    """An ``events`` row (EVENT_COLUMNS order) of an EventFactory event, no payloads."""
    return (
        e["event_id"], e["emitter_id"], e["seq"], e["model"], e["version"], e["environment"],
        e["start_time_ns"], e["latency_ns"], e["device_time_ns"], e["status"], None, None,
        1, e["device"], None, None, e["prediction_id"], b"{}", 0,
    )  # fmt: skip


@pytest.fixture
def hours_start() -> int:
    return EventFactory().base_time_ns // (HOUR_S * 1_000_000_000) * HOUR_S - 3 * HOUR_S


def test_device_time_is_counted_summed_and_maxed_per_minute():
    factory = EventFactory(model="gpu")
    # The first two minutes of an hour: two minutes from any other start may straddle one
    # (CI rehearsal at hh:09, whose factory starts at hh-1:59, found two hours).
    start = factory.base_time_ns // (HOUR_S * 1_000_000_000) * HOUR_S
    events = _events(factory, start, 2, 30)
    figures = derive_figures([_row(e) for e in events], [])
    for minute in (start, start + 60):
        measured = [
            e["device_time_ns"]
            for e in events
            if e["start_time_ns"] // MINUTE_NS * 60 == minute and e["device_time_ns"] is not None
        ]
        aggregate = figures.aggregates[("gpu", "v1", minute)]
        assert aggregate.device_count == len(measured) == 10
        assert aggregate.device_time_sum_ns == sum(measured)
        assert aggregate.device_time_max_ns == max(measured)
    (hour,) = figures.hours.values()
    assert hour.count == 60 and hour.device_count == 20
    assert hour.histogram == bucket_counts([e["latency_ns"] for e in events])


def test_without_device_time_the_figures_are_zero():
    factory = EventFactory(model="cpu")
    events = [factory.inference() for _ in range(5)]
    (aggregate,) = derive_figures([_row(e) for e in events], []).aggregates.values()
    assert (aggregate.device_count, aggregate.device_time_sum_ns) == (0, 0)
    assert aggregate.device_time_max_ns == 0


def test_a_batch_of_mixed_series_derives_what_each_series_derives_alone():
    """Most batches hold one model version of one emitter (a shortcut finds that); rows
    of four emitters and two versions interleaved add up per series all the same."""
    start = EventFactory().base_time_ns // MINUTE_NS * 60
    factories = [EventFactory(model="m", version=v, emitter_id=v + e) for v in "12" for e in "ab"]
    series = [_events(factory, start, 2, 12) for factory in factories]
    mixed = [_row(event) for batch in zip(*series, strict=True) for event in batch]
    together = derive_figures(mixed, [])
    alone = [derive_figures([_row(event) for event in events], []) for events in series]
    # Rollups are per model version and minute: the two emitters' calls add up.
    expected: dict[tuple, tuple[int, dict[str, int]]] = {}
    for figures in alone:
        for key, aggregate in figures.aggregates.items():
            count, histogram = expected.get(key, (0, {}))
            merge_into(histogram, aggregate.histogram)
            expected[key] = (count + aggregate.count, histogram)
    assert len(expected) == 4  # 2 versions x 2 minutes
    assert {
        key: (aggregate.count, aggregate.histogram)
        for key, aggregate in together.aggregates.items()
    } == expected
    assert {count for count, _ in expected.values()} == {24}
    # One run of sequence numbers per emitter, interleaving or not.
    assert sorted(together.delivery_runs) == sorted(
        run for figures in alone for run in figures.delivery_runs
    )
    assert [run[:4] for run in sorted(together.delivery_runs)] == [
        (emitter, "m", 0, 23) for emitter in ("1a", "1b", "2a", "2b")
    ]


def test_minute_percentiles_equal_their_histograms_and_hours_sum_their_minutes(
    migrated_engine, hours_start
):
    pipeline = IngestPipeline(migrated_engine)
    for version in ("1", "2"):
        factory = EventFactory(model="fraud", version=version)
        events = _events(factory, hours_start + 1800, 150, 7)  # 2.5 hours, ragged at both ends
        for part in range(0, len(events), 200):  # several batches add to the same rows
            chunk = events[part : part + 200]
            pipeline.ingest([InputMessage(factory.batch_bytes(chunk))], source="http")

    minutes = _rows(migrated_engine, "minute_rollups", "minute_start_s")
    hours = _rows(migrated_engine, "hour_rollups", "hour_start_s")
    for row in minutes.values():
        expected = quantiles(row["histogram"], (0.5, 0.95, 0.99))
        assert [row["p50_ns"], row["p95_ns"], row["p99_ns"]] == expected
    assert len(hours) == 2 * 3
    for (model, version, hour), row in hours.items():
        inside = [
            m for (mm, mv, t), m in minutes.items() if (mm, mv) == (model, version)
            and hour <= t < hour + HOUR_S
        ]  # fmt: skip
        assert row["count"] == sum(m["count"] for m in inside) > 0
        for name in ("errors", "latency_sum_ns", "device_count", "device_time_sum_ns"):
            assert row[name] == sum(m[name] for m in inside), name
        for name in ("latency_max_ns", "device_time_max_ns"):
            assert row[name] == max(m[name] for m in inside), name
        merged: dict[str, int] = {}
        for m in inside:
            merge_into(merged, m["histogram"])
        assert row["histogram"] == merged
        assert (row["p50_ns"], row["p95_ns"], row["p99_ns"]) == percentiles(merged)
    assert sum(r["count"] for r in hours.values()) == 2 * 150 * 7


def test_a_redelivered_batch_adds_nothing_to_minutes_or_hours(migrated_engine, hours_start):
    pipeline = IngestPipeline(migrated_engine)
    factory = EventFactory(model="fraud")
    events = _events(factory, hours_start + 3000, 20, 5)
    body = factory.batch_bytes(events)
    pipeline.ingest([InputMessage(body)], source="http")
    before = (
        _rows(migrated_engine, "minute_rollups", "minute_start_s"),
        _rows(migrated_engine, "hour_rollups", "hour_start_s"),
    )

    again = pipeline.ingest([InputMessage(body)], source="http")
    half = factory.batch_bytes(events[:50] + _events(factory, hours_start + 3000, 1, 4))
    mixed = pipeline.ingest([InputMessage(half)], source="http")

    assert again.stored == 0 and mixed.stored == 4
    minutes = _rows(migrated_engine, "minute_rollups", "minute_start_s")
    hours = _rows(migrated_engine, "hour_rollups", "hour_start_s")
    assert sum(r["count"] for r in hours.values()) == sum(r["count"] for r in minutes.values())
    assert sum(r["count"] for r in hours.values()) == 104
    first_minute = ("fraud", "v1", hours_start + 3000)
    assert minutes[first_minute]["count"] == before[0][first_minute]["count"] + 4
    for key, row in before[1].items():
        grown = hours[key]["count"] - row["count"]
        assert grown == (4 if key[2] == (hours_start + 3000) // HOUR_S * HOUR_S else 0)


def test_two_writers_on_the_same_minutes_and_hours_neither_deadlock_nor_lose_counts(
    migrated_engine, hours_start
):
    """Batches of several models and minutes, in opposite orders from two threads: one lock
    order (minutes, then hours, each by key) keeps PostgreSQL from deadlocking."""
    factories = {m: EventFactory(model=m) for m in ("a", "b", "c")}
    batches = [
        [factory.batch_bytes(_events(factory, hours_start + 3500 + 10 * i, 3, 4))]
        for i in range(8)
        for factory in factories.values()
    ]
    errors: list[BaseException] = []

    def write(order) -> None:
        pipeline = IngestPipeline(migrated_engine)
        try:
            for bodies in order:
                pipeline.ingest([InputMessage(b) for b in bodies], source="http")
        except BaseException as error:  # reported below
            errors.append(error)

    first = batches[: len(batches) // 2]
    second = batches[len(batches) // 2 :]
    threads = [
        threading.Thread(target=write, args=(first,)),
        threading.Thread(target=write, args=(list(reversed(second)),)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    hours = _rows(migrated_engine, "hour_rollups", "hour_start_s")
    minutes = _rows(migrated_engine, "minute_rollups", "minute_start_s")
    total = len(batches) * 3 * 4
    assert (
        sum(r["count"] for r in hours.values())
        == sum(r["count"] for r in minutes.values())
        == total
    )
    assert np.all([r["p50_ns"] is not None for r in hours.values()])
