"""Another process holds the embedded SQLite store's write lock for 6 s under HTTP ingest.

Ingest queues behind the lock on SQLite's busy timeout (30 s, `store.base`) and then
stores the batch; had the lock outlasted it, ingest would answer 503 and the SDK retry.
Either way nothing is lost or doubled, and the file passes SQLite's integrity check.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
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

pytestmark = pytest.mark.slow

MODEL = "fault-sqlite-busy"
LOCK_S = 6.0

_LOCKER = """
import sqlite3, sys, time
path, marker, hold_s = sys.argv[1], sys.argv[2], float(sys.argv[3])
connection = sqlite3.connect(path, isolation_level=None, timeout=60)
connection.execute("BEGIN IMMEDIATE")  # the write lock, as a second writer would take it
open(marker, "w").close()
time.sleep(hold_s)
connection.execute("ROLLBACK")
"""


@monitor(model=MODEL, version="1")
def predict(x):
    return x


def test_write_lock_held_by_another_process_delays_ingest_and_loses_nothing(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    app, engine = build_platform(settings)
    database = settings.data_dir / "inferloop.db"
    marker = tmp_path / "locked"
    probe = EventFactory(model="fault-probe")
    probe_batch = probe.batch_bytes([probe.inference() for _ in range(10)])
    with served(app) as base:
        configure(transport="http", endpoint=base)
        with Traffic(predict) as traffic:
            wait_for(lambda: tally(engine, MODEL).rows >= 500, 60, "ingest under way")
            locker = subprocess.Popen(
                [sys.executable, "-c", _LOCKER, str(database), str(marker), str(LOCK_S)]
            )
            try:
                wait_for(marker.exists, 30, "the other process to take the write lock")
                locked_at = time.monotonic()
                answer = httpx.post(f"{base}/v1/events", content=probe_batch, timeout=60)
                answered_after_s = time.monotonic() - locked_at
                assert locker.wait(60) == 0
            finally:
                locker.kill()
            released_after_s = time.monotonic() - locked_at
            if answer.status_code == 503:  # past the busy timeout: the client must retry
                assert answer.headers["Retry-After"]
                answer = httpx.post(f"{base}/v1/events", content=probe_batch, timeout=60)
            assert answer.status_code == 200 and answer.json()["stored"] == 10
            emitted = traffic.stop()
        assert flush(60)

    sdk = stats()
    stored = tally(engine, MODEL)
    probes = tally(engine, "fault-probe")
    engine.dispose()
    with sqlite3.connect(database) as check:
        integrity = check.execute("PRAGMA integrity_check").fetchall()
    print(
        f"\nfault sqlite-busy: emitted={emitted} stored={stored.rows} "
        f"duplicates={stored.duplicates} dropped={sdk['dropped']} failed={sdk['failed']} "
        f"retried={sdk['retried']} lock={LOCK_S:.0f}s probe_answered_after={answered_after_s:.1f}s "
        f"lock_released_after={released_after_s:.1f}s"
    )
    # The probe waited for the lock instead of failing at once.
    assert answered_after_s >= LOCK_S - 1.0
    assert integrity == [("ok",)]
    assert sdk["sent"] == emitted and sdk["failed"] == 0 and sdk["dropped"] == {}
    assert (stored.rows, stored.distinct_seq, stored.rolled_up) == (emitted,) * 3
    assert (probes.rows, probes.rolled_up) == (10, 10)
