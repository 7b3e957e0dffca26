"""Sustained events/s that the SDK delivers to a real Kafka broker from one process.

Baseline, same run: kafka-python's `send()` called once per event (JSON per event), then
`flush()`. SDK: a monitored function called from one thread; delivered = acknowledged by
the broker (`stats()["sent"]` after `flush()`, checked against the topic's end offsets).
Each phase uses a fresh topic. Peak RSS is reported to show that memory stays bounded.

    .venv/bin/python bench/sdk_throughput.py [--bootstrap 127.0.0.1:19092] [--events 300000]

Last line: one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import uuid
from typing import Any

from inferloop.sdk import configure, events_of, flush, monitor, shutdown, stats
from inferloop.sdk._kafka import choose_compression


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fresh_topic(admin: Any) -> str:
    from kafka.admin import NewTopic

    name = f"bench-sdk-{uuid.uuid4().hex[:10]}"
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
    return name


def sample_event(i: int) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "kind": "inference",
        "event_id": uuid.uuid4().hex,
        "emitter_id": "baseline",
        "seq": i,
        "model": "fraud",
        "version": "1",
        "environment": "bench",
        "start_time_ns": time.time_ns(),
        "latency_ns": 1_000,
        "device_time_ns": None,
        "status": "ok",
        "error_type": None,
        "error_message": None,
        "batch_size": 1,
        "device": "cpu",
        "inputs": {"rows": [{"age": 31, "amount": 12.5, "score": i}]},
        "outputs": {"rows": [{"value": 0.5}]},
        "prediction_id": f"p-{i}",
        "tags": {},
    }


def baseline(bootstrap: str, topic: str, events: int, compression: str | None) -> dict[str, Any]:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, compression_type=compression)
    payloads = [json.dumps(sample_event(i)).encode() for i in range(events)]
    cpu_started = time.process_time()
    started = time.perf_counter()
    for payload in payloads:
        producer.send(topic, value=payload, key=b"fraud")
    producer.flush(timeout=300)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    producer.close()
    return {
        "events": events,
        "seconds": elapsed,
        "events_per_s": events / elapsed,
        "cpu_us_per_event": cpu / events * 1e6,
    }


def topic_size(bootstrap: str, topic: str) -> int:
    """Events in the topic, read back (batches are counted by their events)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=3_000,
    )
    total = 0
    try:
        for message in consumer:
            total += len(events_of(message.value))  # v1 or v2 (columnar) batches
    finally:
        consumer.close()
    return total


def sdk_run(bootstrap: str, topic: str, events: int, queue_size: int) -> dict[str, Any]:
    configure(
        transport="kafka",
        kafka_bootstrap_servers=bootstrap,
        kafka_topic=topic,
        queue_size=queue_size,
        register_prometheus=False,
    )

    @monitor(model="fraud", version="1")
    def predict(age, amount, score):
        return 0.5

    from inferloop.sdk import _state

    queue = _state.emitter.queue
    pause_at = queue_size * 3 // 4
    cpu_started = time.process_time()
    started = time.perf_counter()
    for i in range(events):
        predict(31, 12.5, i)
        if not i & 1023 and len(queue) > pause_at:
            while len(queue) > queue_size // 4:  # the bench's own back-pressure, not the SDK's
                time.sleep(0.001)
    produced = time.perf_counter() - started
    delivered_all = flush(300)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    figures = stats()
    shutdown(timeout=10)
    return {
        "events": events,
        "call_seconds": produced,
        "seconds": elapsed,
        "delivered": figures["sent"],
        "all_delivered": delivered_all,
        "dropped": figures["dropped"],
        "batches": figures["batches"],
        "events_per_s": figures["sent"] / elapsed,
        # All threads of the process (caller, SDK worker, kafka-python sender): the GIL makes
        # this CPU-bound, so 1e6 / cpu_us_per_event is the rate one free core would give.
        "cpu_seconds": cpu,
        "cpu_us_per_event": cpu / max(figures["sent"], 1) * 1e6,
        "events_per_cpu_s": figures["sent"] / cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--events", type=int, default=300_000, help="events sent through the SDK")
    parser.add_argument("--baseline-events", type=int, default=30_000)
    parser.add_argument("--queue-size", type=int, default=65_536)
    options = parser.parse_args()

    from kafka.admin import KafkaAdminClient
    from kafka.record import util as record_util

    admin = KafkaAdminClient(bootstrap_servers=options.bootstrap, client_id="bench-sdk")
    topics = [fresh_topic(admin), fresh_topic(admin)]
    compression = choose_compression("auto")
    try:
        rss_start = peak_rss_mib()
        base = baseline(options.bootstrap, topics[0], options.baseline_events, compression)
        rss_after_baseline = peak_rss_mib()
        ours = sdk_run(options.bootstrap, topics[1], options.events, options.queue_size)
        rss_after_sdk = peak_rss_mib()
        on_topic = topic_size(options.bootstrap, topics[1])
    finally:
        admin.delete_topics(topics)
        admin.close()
    figures = {
        "compression": compression,
        "crc32c": "c" if record_util.crc32c_c is not None else "pure-python",
        "baseline_send_per_event": base,
        "sdk": ours | {"on_topic": on_topic},
        "ratio_sdk_over_baseline": ours["events_per_s"] / base["events_per_s"],
        "peak_rss_mib": {
            "start": rss_start,
            "after_baseline": rss_after_baseline,
            "after_sdk": rss_after_sdk,
        },
        "checks": {
            "ge_100k_per_s": ours["events_per_s"] >= 100_000,
            "ge_5x_baseline": ours["events_per_s"] >= 5 * base["events_per_s"],
            "all_on_topic": on_topic == ours["delivered"] == options.events,
        },
    }
    print(
        f"baseline {base['events_per_s']:.0f}/s  sdk {ours['events_per_s']:.0f}/s  "
        f"x{figures['ratio_sdk_over_baseline']:.1f}  rss {rss_after_sdk:.0f} MiB  "
        f"sdk cpu {ours['cpu_us_per_event']:.1f} us/event",
        file=sys.stderr,
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
