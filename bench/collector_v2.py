"""Collector ingest of columnar (v2) batches against the same events as v1 batches.

The SDK makes the batches: N calls of a monitored function with 3 scalar inputs and a
scalar output, captured as the v2 batches it sends. The same events, expanded to the v1
layout (`inferloop.sdk._columns.expand`, as the collector reads v2), go out as v1
envelopes of the same sizes. Each set fills its own topic, and `run_collector` stores it
into a fresh PostgreSQL database: events/s and events per CPU second of this process (the
database server's CPU is not counted), over alternating rounds in the same run. The
ratios are v2 over v1.

    flock /tmp/bench.lock .venv/bin/python bench/collector_v2.py [--events 200000] [--rounds 2]

Last line of output: one JSON object with the figures and ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid

import orjson
import sqlalchemy as sa
from collector_ingest import collector_rate, fill_topic, verify

from inferloop.sdk import configure, flush, monitor, shutdown
from inferloop.sdk._columns import expand
from inferloop.settings import Settings
from inferloop.store import upgrade


class CapturingTransport:
    """Keeps every batch the SDK sends, as sent (key, bytes)."""

    def __init__(self) -> None:
        self.batches: list[tuple[bytes, bytes]] = []

    def send(self, batch: bytes, *, key: str) -> None:
        self.batches.append((key.encode(), batch))


@monitor(model="bench-v2", version="1")
def score(age: int, amount: float, country: str) -> float:
    return 0.25


def sdk_batches(events: int) -> list[tuple[bytes, bytes]]:
    """The v2 batches the SDK sends for `events` calls."""
    capture = CapturingTransport()
    configure(transport=capture, flush_interval_s=0.05, queue_size=events + 1)
    for i in range(events):
        score(20 + i % 50, 12.5 + i % 7, "fr" if i % 3 else "de")
    if not flush(120):
        raise SystemExit("the SDK did not deliver its batches in 120 s")
    shutdown(timeout=5)
    versions = {orjson.loads(batch)["schema_version"] for _, batch in capture.batches}
    if versions != {2}:
        raise SystemExit(f"expected v2 batches from the SDK, got schema versions {versions}")
    return capture.batches


def as_v1(batches: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The same events, batch for batch, in the v1 layout."""
    return [(key, orjson.dumps(expand(orjson.loads(batch)))) for key, batch in batches]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=2, help="v1 and v2 runs each, alternating")
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument(
        "--messages-per-poll",
        type=int,
        default=5,
        help="the collector's max_poll_records: batches of the SDK's ~2,000 events each, "
        "so that a run is many store transactions, the same for both layouts",
    )
    parser.add_argument(
        "--bootstrap", default=os.environ.get("INFERLOOP_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "INFERLOOP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:15432/postgres"
        ),
    )
    args = parser.parse_args()

    started = time.perf_counter()
    v2 = sdk_batches(args.events)
    v1 = as_v1(v2)
    sizes = {name: sum(len(b) for _, b in batches) for name, batches in (("v1", v1), ("v2", v2))}
    print(
        f"{args.events} events in {len(v2)} batches from the SDK in "
        f"{time.perf_counter() - started:.1f} s: v1 {sizes['v1'] / 1e6:.1f} MB, "
        f"v2 {sizes['v2'] / 1e6:.1f} MB"
    )
    admin_url = sa.engine.make_url(args.postgres_url)
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    results: dict[str, list[dict[str, float]]] = {"v1": [], "v2": []}
    try:
        for round_number in range(args.rounds):
            order = ("v1", "v2") if round_number % 2 == 0 else ("v2", "v1")
            for name in order:
                batches = v1 if name == "v1" else v2
                topic = f"bench-{name}-{uuid.uuid4().hex[:8]}"
                fill_topic(args.bootstrap, topic, args.partitions, batches)
                database = f"bench_{name}_{uuid.uuid4().hex[:8]}"
                with admin.connect() as connection:
                    connection.execute(sa.text(f'CREATE DATABASE "{database}"'))
                url = admin_url.set(database=database).render_as_string(False)
                try:
                    upgrade(url)
                    settings = Settings(
                        database_url=url,
                        kafka_bootstrap_servers=args.bootstrap,
                        kafka_topic=topic,
                        kafka_group_id=f"bench-{name}-{uuid.uuid4().hex[:6]}",
                        kafka_dead_letter_topic=f"{topic}.dead",
                        collector={"max_poll_records": args.messages_per_poll},
                    )
                    result = collector_rate(settings, args.events, timeout_s=300)
                    verify(url, args.events)
                finally:
                    with admin.connect() as connection:
                        connection.execute(
                            sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
                        )
                results[name].append(result)
                print(
                    f"round {round_number + 1} {name}: {result['events_per_s']:,.0f} events/s, "
                    f"{result['events_per_cpu_s']:,.0f} events per CPU second; "
                    f"PostgreSQL {result['postgres_cpu_us_per_event']:.1f} µs of CPU per event"
                )
    finally:
        admin.dispose()

    def median(name: str, figure: str) -> float:
        return statistics.median(r[figure] for r in results[name])

    figures = {
        "events": args.events,
        "batches": len(v2),
        "rounds": args.rounds,
        "v1_bytes": sizes["v1"],
        "v2_bytes": sizes["v2"],
        "v1_events_per_s": round(median("v1", "events_per_s")),
        "v2_events_per_s": round(median("v2", "events_per_s")),
        "v1_events_per_cpu_s": round(median("v1", "events_per_cpu_s")),
        "v2_events_per_cpu_s": round(median("v2", "events_per_cpu_s")),
        # The database server's work per event is the same for both layouts: it bounds
        # the events/s ratio on a machine whose cores it shares with the collector.
        "v1_postgres_cpu_us_per_event": round(median("v1", "postgres_cpu_us_per_event"), 2),
        "v2_postgres_cpu_us_per_event": round(median("v2", "postgres_cpu_us_per_event"), 2),
    }
    figures["v2_over_v1_events_per_s"] = round(
        figures["v2_events_per_s"] / figures["v1_events_per_s"], 2
    )
    figures["v2_over_v1_events_per_cpu_s"] = round(
        figures["v2_events_per_cpu_s"] / figures["v1_events_per_cpu_s"], 2
    )
    figures["targets_met"] = (
        figures["v2_over_v1_events_per_s"] >= 2.0 and figures["v2_over_v1_events_per_cpu_s"] >= 2.0
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
