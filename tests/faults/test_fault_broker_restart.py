"""A broker of the test's own stopped for 10 s and started again on the same data, under a
running collector and an SDK producing to it: no event lost, none stored twice."""

from __future__ import annotations

import time

import pytest
from collector_process import collector_process, committed_offsets
from kafka.admin import KafkaAdminClient, NewTopic
from tally import tally
from traffic import Traffic
from waiting import wait_for

from inferloop.sdk import configure, flush, monitor, stats
from inferloop.settings import Settings
from inferloop.store import create_engine_for, upgrade

pytestmark = [
    pytest.mark.slow,
    pytest.mark.kafka,
    # kafka-python 3 leaves the sockets of refused connection attempts for the garbage
    # collector; the `own_kafka` fixture collects them inside the test, filtered here.
    pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning"),
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
    ),
]

MODEL = "fault-broker-restart"
TOPIC = "fault.events"
DOWN_S = 10.0


@monitor(model=MODEL, version="1")
def predict(x):
    return x


def _create_topics(bootstrap: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="inferloop-fault-tests")
    try:
        admin.create_topics(
            [
                NewTopic(name, num_partitions=2, replication_factor=1)
                for name in (TOPIC, f"{TOPIC}.labels", f"{TOPIC}.dead")
            ]
        )
    finally:
        admin.close()


def _diagnosis(bootstrap: str, group: str, log_path) -> str:
    """What a stalled resume looks like from outside: is the SDK still producing (end
    offsets moving), is the collector consuming (committed offsets), what it logged."""
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        ends = consumer.end_offsets([TopicPartition(TOPIC, p) for p in (0, 1)])
    finally:
        consumer.close()
    log = log_path.read_text(errors="replace").splitlines()[-40:]
    return (
        f"sdk stats {stats()}; topic end offsets {ends}; "
        f"committed {committed_offsets(bootstrap, group, TOPIC)}; collector log tail:\n"
        + "\n".join(log)
    )


def test_broker_restarted_under_collector_and_sdk_loses_and_doubles_nothing(
    own_kafka, postgres_url, tmp_path
):
    upgrade(postgres_url)
    engine = create_engine_for(postgres_url)
    _create_topics(own_kafka.bootstrap)
    group = "fault-collectors"
    settings = Settings(
        database_url=postgres_url,
        kafka_bootstrap_servers=own_kafka.bootstrap,
        kafka_topic=TOPIC,
        kafka_labels_topic=f"{TOPIC}.labels",
        kafka_dead_letter_topic=f"{TOPIC}.dead",
        kafka_group_id=group,
    )
    with collector_process(settings, tmp_path / "collector.log") as collector:
        configure(transport="kafka", kafka_bootstrap_servers=own_kafka.bootstrap, kafka_topic=TOPIC)
        with Traffic(predict) as traffic:
            wait_for(lambda: tally(engine, MODEL).rows >= 1_000, 120, "ingest under way")
            stopping_at = time.monotonic()
            own_kafka.stop()
            down_at = time.monotonic()
            time.sleep(max(0.0, DOWN_S - (time.monotonic() - down_at)))  # the outage itself
            during = tally(engine, MODEL).rows
            own_kafka.start()
            up_at = time.monotonic()
            try:
                wait_for(
                    lambda: tally(engine, MODEL).rows > during,
                    180,
                    "ingest to resume after the restart",
                )
            except AssertionError as error:
                raise AssertionError(
                    _diagnosis(own_kafka.bootstrap, group, tmp_path / "collector.log")
                ) from error
            resumed_after_s = time.monotonic() - up_at
            emitted = traffic.stop()
        assert flush(180), "the SDK did not deliver its backlog after the restart"
        wait_for(lambda: tally(engine, MODEL).rows >= emitted, 240, "every event stored")
        drained_after_s = time.monotonic() - up_at
        time.sleep(1.0)  # a late duplicate would show up now
        assert collector.poll() is None, "the collector exited"
        wait_for(
            lambda: sum(committed_offsets(own_kafka.bootstrap, group, TOPIC).values()) > 0,
            60,
            "offsets committed after the restart",
        )

    sdk = stats()
    stored = tally(engine, MODEL)
    engine.dispose()
    print(
        f"\nfault broker-restart: emitted={emitted} stored={stored.rows} "
        f"duplicates={stored.duplicates} sdk_dropped={sdk['dropped']} failed={sdk['failed']} "
        f"retried={sdk['retried']} clean_stop={down_at - stopping_at:.1f}s down={DOWN_S:.0f}s "
        f"resumed_after={resumed_after_s:.1f}s drained_after={drained_after_s:.1f}s"
    )
    assert sdk["sent"] == emitted and sdk["failed"] == 0 and sdk["dropped"] == {}
    assert (stored.rows, stored.distinct_seq, stored.rolled_up) == (emitted,) * 3
