"""The Kafka collector on the real broker and both databases.

Collectors run as real subprocesses (``python -c`` calling ``run_collector``) so
that ``kill -9`` is a real crash between a database commit and an offset commit.
"""

from __future__ import annotations

import gc
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import orjson
import pytest
import sqlalchemy as sa
from ingest_events import EventFactory
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient
from waiting import wait_for

from inferloop.collector import run_collector
from inferloop.collector.pipeline import BATCH_GC_THRESHOLD
from inferloop.settings import CollectorSettings, Settings
from inferloop.store import create_engine_for, upgrade

pytestmark = pytest.mark.kafka

_COLLECTOR_CODE = """
import logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
from inferloop.collector import run_collector
from inferloop.settings import Settings
run_collector(
    Settings(collector={"max_poll_records": int(sys.argv[1]), "session_timeout_ms": 6000})
)
"""


def _settings(database_url: str, bootstrap: str, topic: str, group: str) -> Settings:
    return Settings(
        database_url=database_url,
        kafka_bootstrap_servers=bootstrap,
        kafka_topic=topic,
        kafka_group_id=group,
        kafka_dead_letter_topic=f"{topic}.dead",
    )


@pytest.fixture
def spawn_collector(tmp_path) -> Iterator[Callable[..., subprocess.Popen]]:
    """Start collector subprocesses; whatever is still running at the end is killed."""
    started: list[subprocess.Popen] = []
    logs = []

    def spawn(settings: Settings, max_poll_records: int = 5) -> subprocess.Popen:
        env = {k: v for k, v in os.environ.items() if not k.startswith("INFERLOOP_")}
        env.update(settings.to_environment())
        log = open(tmp_path / f"collector-{len(started)}.log", "wb")  # noqa: SIM115
        logs.append(log)
        process = subprocess.Popen(
            [sys.executable, "-c", _COLLECTOR_CODE, str(max_poll_records)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        return process

    yield spawn
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
    for log in logs:
        log.close()


def _produce_batches(bootstrap: str, topic: str, payloads: list[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    for key, value in payloads:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()


def _make_batches(
    models: list[str], batches_per_model: int, events_per_batch: int
) -> tuple[list[tuple[bytes, bytes]], list[str]]:
    payloads, ids = [], []
    factories = [EventFactory(model=model) for model in models]
    for _ in range(batches_per_model):
        for factory in factories:
            events = [factory.inference() for _ in range(events_per_batch)]
            ids.extend(e["event_id"] for e in events)
            payloads.append((factory.model.encode(), factory.batch_bytes(events)))
    return payloads, ids


def _stored_counts(engine) -> tuple[int, int, int]:
    with engine.connect() as connection:
        rows = connection.scalar(sa.text("SELECT count(*) FROM events"))
        distinct = connection.scalar(sa.text("SELECT count(DISTINCT event_id) FROM events"))
        rolled_up = connection.scalar(sa.text("SELECT coalesce(sum(count), 0) FROM minute_rollups"))
    return rows, distinct, rolled_up


def _assert_exactly_once(engine, ids: list[str]) -> None:
    rows, distinct, rolled_up = _stored_counts(engine)
    assert (rows, distinct, rolled_up) == (len(ids), len(ids), len(ids))
    with engine.connect() as connection:
        stored = set(connection.execute(sa.text("SELECT event_id FROM events")).scalars())
        lost = connection.scalar(
            sa.text("SELECT count(*) FROM delivery_ranges WHERE seq_start > 0")
        )
    assert stored == set(ids)
    # Every emitter's sequence arrived contiguous from 0: no gaps, so no loss recorded.
    assert lost == 0


@pytest.mark.slow
def test_kill_9_mid_stream_then_restart_stores_every_event_exactly_once(
    database_url, migrated_engine, kafka_bootstrap, make_topic, spawn_collector
):
    engine = migrated_engine
    topic = make_topic(partitions=3)
    settings = _settings(database_url, kafka_bootstrap, topic, f"group-{topic}")
    payloads, ids = _make_batches(["a", "b", "c"], batches_per_model=100, events_per_batch=40)
    _produce_batches(kafka_bootstrap, topic, payloads)

    first = spawn_collector(settings, max_poll_records=3)
    wait_for(lambda: _stored_counts(engine)[0] >= len(ids) // 5, 120, "the first fifth stored")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert _stored_counts(engine)[0] < len(ids), "killed too late to be mid-stream"

    spawn_collector(settings, max_poll_records=3)
    wait_for(lambda: _stored_counts(engine)[0] >= len(ids), 180, "every event stored")
    time.sleep(1.0)  # a late duplicate would show up now
    _assert_exactly_once(engine, ids)


def _group_assignment(bootstrap: str, group: str) -> list[set[int]]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        description = admin.describe_groups([group])[group]
        if description["group_state"] != "Stable":
            return []
        return [
            {
                partition
                for assigned in member["member_assignment"]["assigned_partitions"]
                for partition in assigned["partitions"]
            }
            for member in description["members"]
        ]
    finally:
        admin.close()


@pytest.mark.slow
def test_two_collectors_split_partitions_and_survivor_takes_over_after_kill(
    database_url, migrated_engine, kafka_bootstrap, make_topic, spawn_collector
):
    engine = migrated_engine
    topic = make_topic(partitions=4)
    group = f"group-{topic}"
    settings = _settings(database_url, kafka_bootstrap, topic, group)
    victim = spawn_collector(settings)
    survivor = spawn_collector(settings)
    wait_for(
        lambda: sorted(len(a) for a in _group_assignment(kafka_bootstrap, group)) == [2, 2],
        90,
        "two members with two partitions each",
    )

    payloads, ids = _make_batches(
        ["m1", "m2", "m3", "m4"], batches_per_model=60, events_per_batch=25
    )
    producing = threading.Thread(
        target=_produce_batches, args=(kafka_bootstrap, topic, payloads), daemon=True
    )
    producing.start()
    wait_for(lambda: _stored_counts(engine)[0] >= len(ids) // 10, 120, "ingest under way")
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    producing.join(timeout=120)

    wait_for(
        lambda: [len(a) for a in _group_assignment(kafka_bootstrap, group)] == [4],
        90,
        "the survivor owning all four partitions",
    )
    wait_for(lambda: _stored_counts(engine)[0] >= len(ids), 180, "every event stored")
    time.sleep(1.0)
    assert survivor.poll() is None
    _assert_exactly_once(engine, ids)


def _read_topic(bootstrap: str, topic: str, expected: int) -> list:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=15_000,
        enable_auto_commit=False,
    )
    records = []
    for record in consumer:
        records.append(record)
        if len(records) >= expected:
            break
    consumer.close()
    return records


def test_malformed_messages_become_dead_letters_and_valid_ones_around_them_are_stored(
    database_url, migrated_engine, kafka_bootstrap, make_topic
):
    engine = migrated_engine
    topic = make_topic(partitions=1)
    settings = _settings(database_url, kafka_bootstrap, topic, f"group-{topic}")
    factory = EventFactory()
    valid_ids: list[str] = []

    def valid(*, arrives: bool = True) -> bytes:
        events = [factory.inference() for _ in range(3)]
        if arrives:
            valid_ids.extend(e["event_id"] for e in events)
        return factory.batch_bytes(events)

    good_event = factory.inference()
    wrong_type_event = factory.inference(seq="seven")
    valid_ids.append(good_event["event_id"])
    huge = factory.inference(inputs={"rows": [{"text": "x" * 400_000}]})
    messages = [
        valid(),
        valid(arrives=False)[:-20],  # truncated
        valid(),
        factory.batch_bytes([good_event, wrong_type_event]),  # one event with a wrong type
        orjson.dumps({"schema_version": 2, "emitter_id": "e", "events": []}),
        valid(),
        factory.batch_bytes([huge]),
        b'{"schema_version": 1, "emitter_id": "\xff\xfe", "events": []}',  # not UTF-8
        valid(),
    ]
    _produce_batches(kafka_bootstrap, topic, [(b"fraud", m) for m in messages])

    stop = threading.Event()
    metrics_port = _free_port()
    worker = threading.Thread(
        target=run_collector,
        args=(
            settings.model_copy(update={"collector": CollectorSettings(metrics_port=metrics_port)}),
        ),
        kwargs={"stop_event": stop},
    )
    worker.start()
    try:
        wait_for(
            lambda: (
                _stored_counts(engine)[0] >= len(valid_ids) and _count_dead_letters(engine) >= 5
            ),
            60,
            "valid events stored and malformed ones dead-lettered",
        )
        wait_for(
            lambda: 'inferloop_collector_lag{partition="0"' in _scrape(metrics_port),
            30,
            "the lag gauge",
        )
        scraped = _scrape(metrics_port)
        ready = httpx.get(f"http://127.0.0.1:{metrics_port}/readyz", timeout=10)
    finally:
        stop.set()
        worker.join(timeout=30)
    assert not worker.is_alive()
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}

    with engine.connect() as connection:
        stored = set(connection.execute(sa.text("SELECT event_id FROM events")).scalars())
        letters = connection.execute(
            sa.text(
                'SELECT "offset", event_index, reason, raw, raw_size FROM dead_letters ORDER BY "offset"'
            )
        ).all()
    assert stored == set(valid_ids)
    by_offset = {row.offset: row for row in letters}
    assert sorted(by_offset) == [1, 3, 4, 6, 7]
    assert "truncated" in by_offset[1].reason and by_offset[1].raw == messages[1]
    assert by_offset[3].event_index == 1 and "seq" in by_offset[3].reason
    assert "schema_version" in by_offset[4].reason
    assert "inputs" in by_offset[6].reason and by_offset[6].raw_size > 400_000
    assert "UTF-8" in by_offset[7].reason and by_offset[7].raw == messages[7]

    assert 'inferloop_ingest_dead_letters_total{source="kafka"} 5.0' in scraped
    assert (
        f'inferloop_ingest_events_total{{outcome="stored",source="kafka"}} {len(valid_ids)}.0'
        in scraped
    )
    assert "inferloop_ingest_batch_seconds_count" in scraped

    dead_topic = _read_topic(kafka_bootstrap, settings.kafka_dead_letter_topic, 5)
    reasons = [dict(r.headers)["inferloop.reason"].decode() for r in dead_topic]
    assert len(dead_topic) == 5
    assert any("UTF-8" in reason for reason in reasons)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _scrape(port: int) -> str:
    return httpx.get(f"http://127.0.0.1:{port}/metrics").text


def _count_dead_letters(engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(sa.text("SELECT count(*) FROM dead_letters"))


def test_collector_started_before_the_schema_waits_and_loses_nothing(
    database_url, kafka_bootstrap, make_topic, caplog
):
    topic = make_topic(partitions=1)
    settings = _settings(database_url, kafka_bootstrap, topic, f"group-{topic}")
    payloads, ids = _make_batches(["early"], batches_per_model=5, events_per_batch=10)
    _produce_batches(kafka_bootstrap, topic, payloads)
    stop = threading.Event()
    worker = threading.Thread(target=run_collector, args=(settings,), kwargs={"stop_event": stop})
    worker.start()
    try:
        wait_for(lambda: "storing a batch failed" in caplog.text, 60, "a failed attempt to store")
        upgrade(database_url)
        engine = create_engine_for(database_url)
        wait_for(lambda: _stored_counts(engine)[0] >= len(ids), 60, "every event stored")
    finally:
        stop.set()
        worker.join(timeout=30)
    _assert_exactly_once(engine, ids)
    engine.dispose()


def test_collector_collects_garbage_in_batch_sized_steps_and_restores_the_default(
    migrated_engine, database_url, kafka_bootstrap, make_topic
):
    topic = make_topic(partitions=1)
    settings = _settings(database_url, kafka_bootstrap, topic, f"group-{topic}")
    before = gc.get_threshold()
    assert before[0] != BATCH_GC_THRESHOLD
    stop = threading.Event()
    worker = threading.Thread(target=run_collector, args=(settings,), kwargs={"stop_event": stop})
    worker.start()
    try:
        wait_for(lambda: gc.get_threshold()[0] == BATCH_GC_THRESHOLD, 30, "the raised threshold")
        assert gc.get_threshold()[1:] == before[1:]  # the older generations as they were
    finally:
        stop.set()
        worker.join(timeout=30)
    assert not worker.is_alive()
    assert gc.get_threshold() == before
