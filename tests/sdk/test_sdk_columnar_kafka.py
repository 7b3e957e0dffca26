"""Columnar (v2) batches on a real broker, read by a plain kafka-python consumer.

What another reader of the topic would do: consume the messages, check each against the
published schema of its version with jsonschema, and find every event once.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from inferloop.sdk import configure, events_of, flush, load_schema, monitor, stats

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning"),
]


def _consume(bootstrap: str, topic: str, expected: int) -> list[Any]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=5_000,
    )
    messages = []
    try:
        events = 0
        for message in consumer:
            messages.append(message)
            events += len(events_of(message.value))
            if events >= expected:
                break
    finally:
        consumer.close()
    return messages


def test_v2_batches_from_the_broker_validate_against_the_published_schema(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    configure(
        transport="kafka",
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic=kafka_topic,
        flush_interval_s=0.02,
    )
    score = monitor(model="fraud", version="3")(lambda a, b, c: a + b)
    rank = monitor(model="rank")(lambda features: 0.5)
    for i in range(1_000):
        score(i, 1.5, "fr")
    for i in range(300):
        rank({f"f{k}": i * k for k in range(16)})
    assert flush(30), stats()
    messages = _consume(kafka_bootstrap, kafka_topic, 1_300)

    validators = {
        version: jsonschema.Draft202012Validator(load_schema(version)) for version in (1, 2)
    }
    events = []
    for message in messages:
        batch = json.loads(message.value)
        assert batch["schema_version"] == 2
        assert message.key == batch["model"].encode()
        assert list(validators[2].iter_errors(batch)) == []
        events.extend(events_of(batch))
    assert sorted(event["seq"] for event in events) == list(range(1_300))
    assert {event["model"] for event in events} == {"fraud", "rank"}
