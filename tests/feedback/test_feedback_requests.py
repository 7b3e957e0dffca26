"""The request outbox on both back ends: deterministic CloudEvent ids, at most one duplicate
after a dispatcher dies between send and record, back-off on failure, and the destinations."""

from __future__ import annotations

import json
import random
import sys

import pytest
from sinks import serving_sink

from inferloop.feedback import (
    REDEPLOY_REQUESTED,
    CommandDestination,
    KafkaDestination,
    RequestDispatcher,
    WebhookDestination,
    cloud_event,
    decision_id,
    enqueue_request,
)
from inferloop.store import create_engine_for, upgrade
from inferloop.store.feedback_queries import feedback_requests

SECOND = 1_000_000_000
T0 = 1_700_000_000 * SECOND
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


class Killed(BaseException):
    """The process dies: nothing after the send runs, not even `except Exception`."""


class DiesAfterSend:
    def __init__(self, inner) -> None:
        self.inner = inner

    def send(self, event, *, timeout_s):
        self.inner.send(event, timeout_s=timeout_s)
        raise Killed


def event(version: int = 2) -> dict:
    return cloud_event(
        REDEPLOY_REQUESTED,
        subject=f"ranker/{version}",
        decision={"model": "ranker", "environment": "production", "version": version},
        data={"artifact_uri": f"s3://m/{version}"},
        time_ns=T0,
    )


def enqueue(engine, destinations=("hook",), **kwargs) -> int:
    with engine.begin() as connection:
        return enqueue_request(
            connection, event(**kwargs), model="ranker", destinations=list(destinations), now_ns=T0
        )


def test_the_event_id_is_a_hash_of_the_decision_not_of_the_time():
    later = cloud_event(
        REDEPLOY_REQUESTED,
        subject="ranker/2",
        decision={"version": 2, "environment": "production", "model": "ranker"},
        data={},
        time_ns=T0 + 99 * SECOND,
    )
    assert later["id"] == event()["id"] == decision_id(REDEPLOY_REQUESTED, later_decision())
    assert event(version=3)["id"] != event()["id"]
    with pytest.raises(ValueError, match="unknown request type"):
        cloud_event("io.example.other", subject="x", decision={}, data={}, time_ns=T0)


def later_decision() -> dict:
    return {"model": "ranker", "environment": "production", "version": 2}


def test_enqueueing_the_same_decision_twice_is_a_no_op(migrated_engine):
    assert enqueue(migrated_engine, destinations=("hook", "kafka")) == 2
    assert enqueue(migrated_engine, destinations=("hook", "kafka")) == 0
    with migrated_engine.connect() as connection:
        assert len(feedback_requests(connection)) == 2


def test_a_dispatcher_killed_between_send_and_record_delivers_one_duplicate(migrated_engine):
    enqueue(migrated_engine)
    clock = Clock(T0)
    with serving_sink() as sink:
        hook = WebhookDestination(url=sink.url, secrets=[SECRET])
        first = RequestDispatcher(migrated_engine, {"hook": DiesAfterSend(hook)}, clock=clock)
        with pytest.raises(Killed):
            first.run_once()
        second = RequestDispatcher(migrated_engine, {"hook": hook}, clock=clock)
        assert second.run_once() == 0  # the dead one's lease still holds
        clock.now += 61 * SECOND
        assert second.run_once() == 1
        clock.now += 3600 * SECOND
        assert second.run_once() == 0
    ids = [r.headers["webhook-id"] for r in sink.received]
    assert len(ids) == 2 and len(set(ids)) == 1
    assert ids[0] == json.loads(sink.received[0].body)["id"] == event()["id"]
    with migrated_engine.connect() as connection:
        (row,) = feedback_requests(connection)
    assert row["state"] == "delivered" and row["attempts"] == 1


def test_a_failed_send_backs_off_and_then_delivers(migrated_engine):
    enqueue(migrated_engine)
    clock = Clock(T0)
    with serving_sink(statuses=[503]) as sink:
        hook = WebhookDestination(url=sink.url, secrets=[SECRET])
        dispatcher = RequestDispatcher(
            migrated_engine, {"hook": hook}, clock=clock, rng=random.Random(1)
        )
        assert dispatcher.run_once() == 1
        with migrated_engine.connect() as connection:
            (row,) = feedback_requests(connection)
        assert row["state"] == "pending" and "503" in row["last_error"]
        assert T0 <= row["next_attempt_ns"] <= T0 + SECOND  # first back-off: below base_s
        clock.now = row["next_attempt_ns"]
        assert dispatcher.run_once() == 1
    with migrated_engine.connect() as connection:
        (row,) = feedback_requests(connection)
    assert row["state"] == "delivered" and row["attempts"] == 2
    assert len(sink.received) == 2


def test_an_unknown_destination_is_dead_not_retried(migrated_engine):
    enqueue(migrated_engine, destinations=("nowhere",))
    assert RequestDispatcher(migrated_engine, {}, clock=Clock(T0)).run_once() == 1
    with migrated_engine.connect() as connection:
        (row,) = feedback_requests(connection)
    assert row["state"] == "dead"


def test_a_local_command_receives_the_cloudevent_on_stdin(migrated_engine, tmp_path):
    out = tmp_path / "event.json"
    script = "import pathlib, sys; pathlib.Path(sys.argv[1]).write_bytes(sys.stdin.buffer.read())"
    command = CommandDestination(argv=[sys.executable, "-c", script, str(out)])
    enqueue(migrated_engine, destinations=("script",))
    assert RequestDispatcher(migrated_engine, {"script": command}, clock=Clock(T0)).run_once()
    assert json.loads(out.read_bytes()) == event()


@pytest.fixture
def sqlite_engine(tmp_path):
    url = f"sqlite:///{tmp_path / 'inferloop.db'}"
    upgrade(url)
    engine = create_engine_for(url)
    yield engine
    engine.dispose()


def test_the_kafka_destination_produces_the_cloudevent(sqlite_engine, kafka_bootstrap, make_topic):
    from kafka import KafkaConsumer

    topic = make_topic()
    destination = KafkaDestination(bootstrap_servers=kafka_bootstrap, topic=topic)
    enqueue(sqlite_engine, destinations=("kafka",))
    try:
        dispatcher = RequestDispatcher(sqlite_engine, {"kafka": destination}, clock=Clock(T0))
        assert dispatcher.run_once() == 1
    finally:
        destination.close()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=10_000,
    )
    try:
        records = list(consumer)
    finally:
        consumer.close()
    assert len(records) == 1
    assert json.loads(records[0].value) == event()
    assert records[0].key == b"ranker/2"
    assert dict(records[0].headers)["ce_id"] == event()["id"].encode()
    with sqlite_engine.connect() as connection:
        assert feedback_requests(connection)[0]["state"] == "delivered"
