"""Columnar (v2) batches from the SDK through the real broker into the store, exactly once.

The SDK in this process produces v2 batches to Kafka; a collector subprocess is killed
with SIGKILL mid-stream and restarted: every event is stored once (ids derived from the
emitter and the sequence are stable across redelivery), and no sequence gap is recorded.
"""

from __future__ import annotations

import json
import signal
import time

import pytest
import sqlalchemy as sa
from kafka import KafkaConsumer
from test_collector_kafka import _settings, _stored_counts
from test_collector_kafka import spawn_collector as spawn_collector  # a fixture
from waiting import wait_for

from inferloop.sdk import configure, events_of, flush, monitor, shutdown, stats

pytestmark = pytest.mark.kafka


def _topic_events(bootstrap: str, topic: str, expected: int) -> list[dict]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=3_000,
    )
    events = []
    try:
        for message in consumer:
            assert json.loads(message.value)["schema_version"] == 2
            events.extend(events_of(message.value))
            if len(events) >= expected:
                break
    finally:
        consumer.close()
    return events


@pytest.mark.slow
def test_v2_batches_survive_a_collector_kill_9_exactly_once(
    database_url, migrated_engine, kafka_bootstrap, make_topic, spawn_collector
):
    engine = migrated_engine
    topic = make_topic(partitions=3)
    configure(
        transport="kafka",
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic=topic,
        batch_size=40,
        flush_interval_s=0.02,
    )
    try:
        models = [monitor(model=name, version="1")(lambda a, b: a * b) for name in "abc"]
        rank = monitor(model="d")(lambda features: 0.5)
        for i in range(3_000):
            models[i % 3](i, 0.5)
            rank({f"f{k}": float(i + k) for k in range(16)})
        assert flush(60), stats()
        assert stats()["sent"] == 6_000
    finally:
        shutdown(5)
    ids = [event["event_id"] for event in _topic_events(kafka_bootstrap, topic, 6_000)]
    assert len(ids) == len(set(ids)) == 6_000

    settings = _settings(database_url, kafka_bootstrap, topic, f"group-{topic}")
    first = spawn_collector(settings, max_poll_records=3)
    wait_for(lambda: _stored_counts(engine)[0] >= len(ids) // 5, 120, "the first fifth stored")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert _stored_counts(engine)[0] < len(ids), "killed too late to be mid-stream"

    spawn_collector(settings, max_poll_records=3)
    wait_for(lambda: _stored_counts(engine)[0] >= len(ids), 180, "every event stored")
    time.sleep(1.0)  # a late duplicate would show up now
    assert _stored_counts(engine) == (len(ids), len(ids), len(ids))
    with engine.connect() as connection:
        stored = set(connection.execute(sa.text("SELECT event_id FROM events")).scalars())
        ranges = connection.execute(
            sa.text("SELECT seq_start, seq_end FROM delivery_ranges ORDER BY seq_start")
        ).all()
    assert stored == set(ids)
    # The emitter's ranges (one set per model: its calls interleave the four models)
    # tile 0..5,999 with no gap and no overlap: nothing lost, nothing counted twice.
    covered = 0
    for start, end in ranges:
        assert start == covered, (start, covered)
        covered = end + 1
    assert covered == 6_000
