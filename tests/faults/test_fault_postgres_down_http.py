"""The embedded server's PostgreSQL stopped for 15 s under an SDK sending over HTTP.

While the store is down, ingest answers 503 with Retry-After and /readyz 503 naming
the cause, while /metrics still answers (with the store_up gauge at 0); the SDK keeps its
batches and retries no sooner than Retry-After asks. Once the database is
back, every event emitted is stored exactly once and completeness says none was lost.
"""

from __future__ import annotations

import time

import httpx
import pytest
from ingest_events import EventFactory
from serving import served
from tally import tally
from traffic import Traffic
from waiting import wait_for

from inferloop.app.embedded import build_platform
from inferloop.sdk import configure, flush, monitor, stats
from inferloop.settings import Settings
from inferloop.store.completeness import completeness

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

MODEL = "fault-pg-http"
OUTAGE_S = 15.0


@monitor(model=MODEL, version="1")
def predict(x):
    return x


def _ready(base: str) -> httpx.Response:
    return httpx.get(f"{base}/readyz", timeout=30)


def test_postgres_stopped_under_http_ingest_then_every_event_stored_once(own_postgres, tmp_path):
    settings = Settings(database_url=own_postgres.url, data_dir=tmp_path / "data")
    app, engine = build_platform(settings)
    probe = EventFactory(model="fault-probe")
    probe_batch = probe.batch_bytes([probe.inference() for _ in range(10)])
    began_ns = time.time_ns()
    with served(app) as base:
        configure(transport="http", endpoint=base)
        with Traffic(predict) as traffic:
            wait_for(lambda: tally(engine, MODEL).rows >= 1_000, 60, "ingest under way")
            engine.dispose()  # the test's own reads must not keep a connection to the old server
            own_postgres.stop()
            down_at = time.monotonic()

            answer = httpx.post(f"{base}/v1/events", content=probe_batch, timeout=30)
            assert answer.status_code == 503
            assert answer.headers["Retry-After"] == "1"
            # The key check or the write itself, whichever reaches the store first, says so.
            assert "unavailable" in answer.json()["detail"]
            not_ready = _ready(base)
            assert not_ready.status_code == 503 and not_ready.headers["Retry-After"] == "1"
            assert not_ready.json()["reason"].startswith("database unreachable: OperationalError")
            scraped = httpx.get(f"{base}/metrics", timeout=30)  # the key check needs no store
            assert scraped.status_code == 200
            assert 'inferloop_ingest_store_up{source="http"} 0.0' in scraped.text
            wait_for(lambda: stats()["retried"] >= 2, 30, "the SDK to retry with backoff")
            retried_during_outage = stats()["retried"]

            time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))  # the outage itself
            buffered_at_peak = stats()["buffered"]
            own_postgres.start()
            up_at = time.monotonic()
            wait_for(lambda: _ready(base).status_code == 200, 60, "/readyz to answer 200")
            ready_after_s = time.monotonic() - up_at
            emitted = traffic.stop()
        assert flush(120), "the SDK did not deliver its backlog after the database came back"
        drained_after_s = time.monotonic() - up_at
        again = httpx.post(f"{base}/v1/events", content=probe_batch, timeout=30)
        assert again.status_code == 200 and again.json()["stored"] == 10

    sdk = stats()
    stored = tally(engine, MODEL)
    with engine.connect() as connection:
        complete = completeness(
            connection, MODEL, start_ns=began_ns - 60 * 10**9, end_ns=time.time_ns() + 60 * 10**9
        )
    engine.dispose()
    print(
        f"\nfault pg-down-http: emitted={emitted} stored={stored.rows} "
        f"duplicates={stored.duplicates} dropped={sdk['dropped']} failed={sdk['failed']} "
        f"retried={sdk['retried']} (during outage {retried_during_outage}) "
        f"buffered_at_peak={buffered_at_peak} outage={OUTAGE_S:.0f}s "
        f"ready_after={ready_after_s:.1f}s drained_after={drained_after_s:.1f}s"
    )
    assert buffered_at_peak > 0, "the outage did not catch the SDK mid-stream"
    assert sdk["sent"] == emitted and sdk["failed"] == 0 and sdk["dropped"] == {}
    assert (stored.rows, stored.distinct_seq, stored.rolled_up) == (emitted,) * 3
    assert (complete.received, complete.lost, complete.sdk_dropped_total) == (emitted, 0, 0)
