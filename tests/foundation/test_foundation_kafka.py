"""The real broker behaves as the collector relies on: group commits survive a restart."""

from __future__ import annotations

import pytest
from kafka import KafkaConsumer, KafkaProducer

pytestmark = pytest.mark.kafka


def _consume(bootstrap: str, topic: str, group: str, want: int) -> list[bytes]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=15_000,
    )
    received: list[bytes] = []
    try:
        for message in consumer:
            received.append(message.value)
            if len(received) == want:
                break
        consumer.commit()
    finally:
        consumer.close()
    return received


def test_consumer_group_resumes_at_committed_offset_after_restart(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for i in range(20):
        producer.send(kafka_topic, key=b"fraud", value=f"event-{i}".encode())
    producer.flush(timeout=30)
    producer.close()

    first = _consume(kafka_bootstrap, kafka_topic, "roundtrip", want=12)
    second = _consume(kafka_bootstrap, kafka_topic, "roundtrip", want=8)

    assert first == [f"event-{i}".encode() for i in range(12)]
    assert second == [f"event-{i}".encode() for i in range(12, 20)]


def test_uncommitted_messages_are_redelivered_to_the_group(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for i in range(5):
        producer.send(kafka_topic, value=f"m{i}".encode())
    producer.flush(timeout=30)
    producer.close()

    consumer = KafkaConsumer(
        kafka_topic,
        bootstrap_servers=kafka_bootstrap,
        group_id="redeliver",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=15_000,
    )
    seen_without_commit = [next(consumer).value for _ in range(5)]
    consumer.close(autocommit=False)

    assert seen_without_commit == [f"m{i}".encode() for i in range(5)]
    assert _consume(kafka_bootstrap, kafka_topic, "redeliver", want=5) == seen_without_commit
