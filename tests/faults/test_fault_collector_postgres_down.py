"""The collector's PostgreSQL stopped for 30 s under an SDK producing to Kafka.

The collector keeps the batch it could not store and retries it: it commits no offset
while the store is down, and says so on its metrics (`inferloop_ingest_store_up` 0) and
its readiness probe (`/readyz` 503 naming the cause);
once the database is back it resumes by itself, and every event is stored exactly once.
"""

from __future__ import annotations

import time

import httpx
import pytest
from collector_process import collector_process, committed_offsets, metric
from fault_services import free_port
from tally import tally
from traffic import Traffic
from waiting import wait_for

from inferloop.sdk import configure, flush, monitor, stats
from inferloop.settings import Settings
from inferloop.store import create_engine_for, upgrade

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

MODEL = "fault-collector-pg"
OUTAGE_S = 30.0
UP = ("inferloop_ingest_store_up", 'source="kafka"')


@monitor(model=MODEL, version="1")
def predict(x):
    return x


def _readyz(port: int) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)


def test_postgres_stopped_under_the_collector_stops_commits_and_resumes_exactly_once(
    own_postgres, kafka_bootstrap, make_topic, tmp_path
):
    upgrade(own_postgres.url)
    engine = create_engine_for(own_postgres.url)
    topic = make_topic(partitions=2)
    group = f"group-{topic}"
    port = free_port()
    settings = Settings(
        database_url=own_postgres.url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic=topic,
        kafka_labels_topic=f"{topic}.labels",
        kafka_dead_letter_topic=f"{topic}.dead",
        kafka_group_id=group,
        collector={"metrics_port": port},
    )
    with collector_process(settings, tmp_path / "collector.log") as collector:
        wait_for(lambda: metric(port, *UP) == 1.0, 90, "the collector's metrics")
        configure(transport="kafka", kafka_bootstrap_servers=kafka_bootstrap, kafka_topic=topic)
        with Traffic(predict) as traffic:
            wait_for(lambda: tally(engine, MODEL).rows >= 1_000, 90, "ingest under way")
            engine.dispose()
            own_postgres.stop()
            down_at = time.monotonic()
            wait_for(lambda: metric(port, *UP) == 0.0, 60, "the collector to report the store down")
            unhealthy_after_s = time.monotonic() - down_at
            not_ready = _readyz(port)
            assert not_ready.status_code == 503 and not_ready.headers["Retry-After"] == "1"
            assert not_ready.json()["reason"].startswith("store unavailable: StoreUnavailable")
            held = committed_offsets(kafka_bootstrap, group, topic)
            time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))  # the outage itself
            assert committed_offsets(kafka_bootstrap, group, topic) == held
            failures = metric(port, "inferloop_ingest_store_unavailable_total", 'source="kafka"')
            own_postgres.start()
            up_at = time.monotonic()
            wait_for(lambda: metric(port, *UP) == 1.0, 60, "the collector to resume")
            resumed_after_s = time.monotonic() - up_at
            assert _readyz(port).json() == {"status": "ready"}
            emitted = traffic.stop()
        assert flush(60) and stats()["sent"] == emitted
        wait_for(lambda: tally(engine, MODEL).rows >= emitted, 180, "every event stored")
        drained_after_s = time.monotonic() - up_at
        time.sleep(1.0)  # a late duplicate would show up now
        assert collector.poll() is None, "the collector exited"
        final_offsets = committed_offsets(kafka_bootstrap, group, topic)

    stored = tally(engine, MODEL)
    engine.dispose()
    print(
        f"\nfault collector-pg-down: emitted={emitted} stored={stored.rows} "
        f"duplicates={stored.duplicates} sdk={stats()['dropped']} outage={OUTAGE_S:.0f}s "
        f"unhealthy_after={unhealthy_after_s:.1f}s failed_attempts={failures} "
        f"offsets_held={held} resumed_after={resumed_after_s:.1f}s "
        f"drained_after={drained_after_s:.1f}s offsets_final={final_offsets}"
    )
    assert failures and failures >= 2
    assert sum(final_offsets.values()) > sum(held.values())
    assert stats()["failed"] == 0 and stats()["dropped"] == {}
    assert (stored.rows, stored.distinct_seq, stored.rolled_up) == (emitted,) * 3
