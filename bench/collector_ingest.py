"""Collector ingest throughput: pre-filled topic -> store, against a raw consumer.

Baseline: a plain kafka-python consumer that only reads and decodes (orjson)
the same messages, in the same run: the practical limit of one process.
Measured: ``run_collector`` (validation, idempotent insert, rollups, delivery
accounting, offset commits) into PostgreSQL and into SQLite.

Rates exclude the consumer-group join: the clock starts when the first batch
is stored (for the raw consumer: when the first message arrives).

usage: python bench/collector_ingest.py [--events 200000] [--events-per-message 100]
Last line of output: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import orjson
import sqlalchemy as sa
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from inferloop.collector import IngestMetrics, run_collector
from inferloop.collector.consumer import crc_checks_are_cheap
from inferloop.settings import Settings
from inferloop.store import create_engine_for, upgrade


def _event_id(time_ns: int) -> str:
    # Time-ordered like the SDK's UUIDv7-layout ids (index locality matters to the store).
    return f"{time_ns // 1_000_000:012x}{uuid.uuid4().hex[12:]}"


def make_messages(total: int, per_message: int, models: int) -> list[tuple[bytes, bytes]]:
    """Batch envelopes following docs/event-contract.md, one model per batch."""
    emitters = {f"model-{m}": uuid.uuid4().hex for m in range(models)}
    seqs = dict.fromkeys(emitters, 0)
    now = time.time_ns()
    messages = []
    produced = 0
    index = 0
    while produced < total:
        model = f"model-{index % models}"
        index += 1
        emitter = emitters[model]
        events = []
        for _ in range(min(per_message, total - produced)):
            seq = seqs[model]
            seqs[model] += 1
            events.append(
                {
                    "schema_version": 1,
                    "kind": "inference",
                    "event_id": _event_id(now - (total - produced) * 1000),
                    "emitter_id": emitter,
                    "seq": seq,
                    "model": model,
                    "version": "v1",
                    "environment": "bench",
                    "start_time_ns": now - (total - produced) * 1000,
                    "latency_ns": 2_000_000 + (seq * 7919) % 8_000_000,
                    "device_time_ns": None,
                    "status": "error" if seq % 100 == 0 else "ok",
                    "error_type": "ValueError" if seq % 100 == 0 else None,
                    "error_message": "bad input" if seq % 100 == 0 else None,
                    "batch_size": 1,
                    "device": "cpu",
                    "inputs": {"rows": [{"age": 20 + seq % 50, "country": "fr", "amount": 12.5}]},
                    "outputs": {"rows": [{"score": 0.42}]},
                    "prediction_id": f"{emitter}-{seq}",
                    "tags": {"region": "eu"},
                }
            )
            produced += 1
        envelope = {"schema_version": 1, "emitter_id": emitter, "events": events}
        messages.append((model.encode(), orjson.dumps(envelope)))
    return messages


def fill_topic(bootstrap: str, topic: str, partitions: int, messages) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    admin.close()
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=20,
        batch_size=1 << 20,
        max_request_size=16 << 20,
    )
    for key, value in messages:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()


def raw_consume_rate(
    bootstrap: str, topic: str, partitions: int, total_events: int
) -> dict[str, float]:
    """Read and decode every message with a bare consumer (no group, no store)."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        fetch_max_bytes=64 << 20,
        max_partition_fetch_bytes=16 << 20,
        check_crcs=crc_checks_are_cheap(),  # the same choice run_collector makes
    )
    assigned = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(assigned)
    consumer.seek_to_beginning(*assigned)
    seen = 0
    first = None
    while seen < total_events:
        for records in consumer.poll(timeout_ms=1000, max_records=500).values():
            if first is None:
                first = time.perf_counter()
                first_cpu = time.process_time()
                first_count = 0
            for record in records:
                seen += len(orjson.loads(record.value)["events"])
    elapsed = time.perf_counter() - first
    cpu = time.process_time() - first_cpu
    consumer.close()
    return {
        "events_per_s": (seen - first_count) / elapsed,
        "events_per_cpu_s": (seen - first_count) / cpu,
    }


def postgres_server_cpu_s() -> float:
    """CPU seconds used so far by this machine's PostgreSQL server processes (0 if none
    can be read): what the database spends on the events, beside the collector's own."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)
        except OSError:
            continue
        if not fields[0].endswith(b"(postgres"):
            continue
        values = fields[1].split()
        total += int(values[11]) + int(values[12])  # utime, stime (fields 14 and 15)
    return total / ticks


def collector_rate(settings: Settings, total_events: int, timeout_s: float) -> dict[str, float]:
    metrics = IngestMetrics()
    stop = threading.Event()
    worker = threading.Thread(
        target=run_collector, args=(settings,), kwargs={"stop_event": stop, "metrics": metrics}
    )
    stored = metrics.events.labels("kafka", "stored")
    started = time.monotonic()
    worker.start()
    first_at = first_count = None
    try:
        while stored._value.get() < total_events:
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"stored {stored._value.get()} of {total_events}")
            if first_at is None and stored._value.get() > 0:
                first_at, first_count = time.perf_counter(), stored._value.get()
                first_cpu = time.process_time()
                first_server_cpu = postgres_server_cpu_s()
            time.sleep(0.01)
        if first_at is None:  # everything landed before the first look: nothing to time
            raise SystemExit(
                f"all {total_events} events were stored in one batch: use a larger --events"
            )
        done_at = time.perf_counter()
        cpu = time.process_time() - first_cpu
        server_cpu = postgres_server_cpu_s() - first_server_cpu
    finally:
        stop.set()
        worker.join(timeout=60)
    batch = metrics.batch_seconds.labels("kafka")
    batches = sum(s.value for s in batch.collect()[0].samples if s.name.endswith("_count"))
    batch_sum = sum(s.value for s in batch.collect()[0].samples if s.name.endswith("_sum"))
    return {
        "events_per_s": (total_events - first_count) / (done_at - first_at),
        # This process's CPU only (the database server's is not counted): a
        # figure that holds up on a machine shared with other work.
        "events_per_cpu_s": (total_events - first_count) / cpu,
        "postgres_cpu_us_per_event": 1e6 * server_cpu / (total_events - first_count),
        "mean_batch_ms": 1000 * batch_sum / max(batches, 1),
        "batches": batches,
    }


_COLLECTOR_CODE = """
import sys
from inferloop.collector import run_collector
from inferloop.settings import Settings
run_collector(Settings())
"""


def collector_processes_rate(
    settings: Settings, processes: int, total_events: int, timeout_s: float
) -> dict[str, float]:
    """Several collector processes in one group (own GILs), rate read from the database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFERLOOP_")}
    env.update(settings.to_environment())
    engine = create_engine_for(settings.database_url)
    started = time.monotonic()
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _COLLECTOR_CODE], env=env, stderr=subprocess.DEVNULL
        )
        for _ in range(processes)
    ]
    first_at = first_count = None
    try:
        while True:
            with engine.connect() as connection:
                stored = int(
                    connection.scalar(sa.text("SELECT coalesce(sum(count), 0) FROM minute_rollups"))
                )
            now = time.perf_counter()
            if first_at is None and stored > 0:
                first_at, first_count = now, stored
            if stored >= total_events:
                break
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"stored {stored} of {total_events}")
            time.sleep(0.05)
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(timeout=30)
        engine.dispose()
    return {"events_per_s": (total_events - first_count) / (now - first_at)}


def verify(url: str, total_events: int) -> None:
    engine = create_engine_for(url)
    with engine.connect() as connection:
        rows = connection.scalar(sa.text("SELECT count(*) FROM events"))
        rolled = connection.scalar(sa.text("SELECT sum(count) FROM minute_rollups"))
    engine.dispose()
    if rows != total_events or rolled != total_events:
        raise AssertionError(f"stored {rows} rows, rollups count {rolled}, expected {total_events}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--events-per-message", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--models", type=int, default=4)
    parser.add_argument(
        "--bootstrap", default=os.environ.get("INFERLOOP_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "INFERLOOP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:15432/postgres"
        ),
    )
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument(
        "--processes",
        type=int,
        default=2,
        help="also measure this many collector processes in one group into PostgreSQL (0: skip)",
    )
    args = parser.parse_args()

    topic = f"bench-ingest-{uuid.uuid4().hex[:8]}"
    t = time.perf_counter()
    messages = make_messages(args.events, args.events_per_message, args.models)
    fill_topic(args.bootstrap, topic, args.partitions, messages)
    payload_mb = sum(len(v) for _, v in messages) / 1e6
    print(
        f"filled {topic}: {len(messages)} messages, {args.events} events, "
        f"{payload_mb:.1f} MB in {time.perf_counter() - t:.1f} s"
    )

    raw_figures = raw_consume_rate(args.bootstrap, topic, args.partitions, args.events)
    raw = raw_figures["events_per_s"]
    raw_cpu = raw_figures["events_per_cpu_s"]
    print(f"raw consume+decode: {raw:,.0f} events/s, {raw_cpu:,.0f} events per CPU second")

    admin_url = sa.engine.make_url(args.postgres_url)
    database = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{database}"'))
    figures: dict[str, float] = {
        "events": args.events,
        "events_per_message": args.events_per_message,
        "raw_consume_events_per_s": round(raw),
        "raw_consume_events_per_cpu_s": round(raw_cpu),
    }
    tmp = tempfile.TemporaryDirectory()
    try:
        targets = [("postgresql", admin_url.set(database=database).render_as_string(False))]
        if not args.skip_sqlite:
            targets.append(("sqlite", f"sqlite:///{tmp.name}/bench.db"))
        for name, url in targets:
            upgrade(url)
            settings = Settings(
                database_url=url,
                kafka_bootstrap_servers=args.bootstrap,
                kafka_topic=topic,
                kafka_group_id=f"bench-{name}-{uuid.uuid4().hex[:6]}",
                kafka_dead_letter_topic=f"{topic}.dead",
            )
            result = collector_rate(settings, args.events, timeout_s=300)
            verify(url, args.events)
            print(
                f"collector -> {name}: {result['events_per_s']:,.0f} events/s, "
                f"{result['events_per_cpu_s']:,.0f} events per CPU second, "
                f"{result['mean_batch_ms']:.1f} ms mean batch over {result['batches']:.0f} batches"
            )
            figures[f"{name}_events_per_s"] = round(result["events_per_s"])
            figures[f"{name}_mean_batch_ms"] = round(result["mean_batch_ms"], 2)
            figures[f"{name}_vs_raw_consume"] = round(result["events_per_s"] / raw, 3)
            figures[f"{name}_events_per_cpu_s"] = round(result["events_per_cpu_s"])
            figures[f"{name}_vs_raw_consume_cpu"] = round(result["events_per_cpu_s"] / raw_cpu, 3)
            if name == "postgresql" and args.processes > 1:
                with create_engine_for(url).begin() as connection:
                    connection.execute(
                        sa.text(
                            "TRUNCATE events, minute_rollups, hour_rollups, delivery_ranges, "
                            "sdk_drops, dead_letters"
                        )
                    )
                group = Settings(
                    **{
                        **settings.model_dump(),
                        "kafka_group_id": f"bench-procs-{uuid.uuid4().hex[:6]}",
                    }
                )
                multi = collector_processes_rate(group, args.processes, args.events, timeout_s=300)
                verify(url, args.events)
                key = f"postgresql_{args.processes}_processes"
                print(
                    f"{args.processes} collector processes -> postgresql: "
                    f"{multi['events_per_s']:,.0f} events/s"
                )
                figures[f"{key}_events_per_s"] = round(multi["events_per_s"])
                figures[f"{key}_vs_raw_consume"] = round(multi["events_per_s"] / raw, 3)
    finally:
        tmp.cleanup()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()
        admin_client = KafkaAdminClient(bootstrap_servers=args.bootstrap)
        with contextlib.suppress(Exception):  # cleanup only
            admin_client.delete_topics([topic])
        admin_client.close()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
