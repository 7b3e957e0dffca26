"""Another process holds the embedded SQLite store's write lock under HTTP ingest.

For 6 s: ingest queues behind the lock on SQLite's busy timeout (30 s, `store.base`)
and then stores the batch. For 36 s, past the busy timeout: ingest answers 503 with
Retry-After naming the lock, and the SDK (whose own 10 s request timeout fires first)
retries. Either way nothing is lost or doubled, and the file passes SQLite's integrity
check.
"""

from __future__ import annotations

import contextlib
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
from inferloop.store.base import SQLITE_BUSY_TIMEOUT_MS

pytestmark = pytest.mark.slow

MODEL = "fault-sqlite-busy"
BUSY_TIMEOUT_S = SQLITE_BUSY_TIMEOUT_MS / 1000

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


def _ingest_under_lock(tmp_path, lock_s: float) -> dict:
    """Traffic over HTTP while another process holds the write lock for `lock_s`; a probe
    batch is posted as the lock is taken. What happened, counted."""
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
                [sys.executable, "-c", _LOCKER, str(database), str(marker), str(lock_s)]
            )
            try:
                wait_for(marker.exists, 30, "the other process to take the write lock")
                locked_at = time.monotonic()
                answer = httpx.post(f"{base}/v1/events", content=probe_batch, timeout=90)
                answered_after_s = time.monotonic() - locked_at
                assert locker.wait(90) == 0
            finally:
                locker.kill()
            released_after_s = time.monotonic() - locked_at
            first = answer
            if answer.status_code == 503:  # past the busy timeout: the client must retry
                answer = httpx.post(f"{base}/v1/events", content=probe_batch, timeout=60)
            assert answer.status_code == 200 and answer.json()["stored"] == 10
            emitted = traffic.stop()
        assert flush(90)

    sdk = stats()
    stored = tally(engine, MODEL)
    probes = tally(engine, "fault-probe")
    engine.dispose()
    with contextlib.closing(sqlite3.connect(database)) as check:
        integrity = check.execute("PRAGMA integrity_check").fetchall()
    print(
        f"\nfault sqlite-busy: emitted={emitted} stored={stored.rows} "
        f"duplicates={stored.duplicates} dropped={sdk['dropped']} failed={sdk['failed']} "
        f"retried={sdk['retried']} lock={lock_s:.0f}s probe={first.status_code} "
        f"after {answered_after_s:.1f}s lock_released_after={released_after_s:.1f}s"
    )
    assert integrity == [("ok",)]
    assert sdk["sent"] == emitted and sdk["failed"] == 0 and sdk["dropped"] == {}
    assert (stored.rows, stored.distinct_seq, stored.rolled_up) == (emitted,) * 3
    assert (probes.rows, probes.rolled_up) == (10, 10)
    return {"first": first, "answered_after_s": answered_after_s, "sdk": sdk}


def test_write_lock_held_for_seconds_delays_ingest_and_loses_nothing(tmp_path):
    lock_s = 6.0
    seen = _ingest_under_lock(tmp_path, lock_s)
    assert seen["first"].status_code == 200
    assert seen["answered_after_s"] >= lock_s - 1.0  # it waited for the lock, then stored


def test_write_lock_held_past_the_busy_timeout_answers_503_and_loses_nothing(tmp_path):
    seen = _ingest_under_lock(tmp_path, BUSY_TIMEOUT_S + 6.0)
    refusal = seen["first"]
    assert refusal.status_code == 503 and refusal.headers["Retry-After"] == "1"
    assert "database is locked" in refusal.json()["detail"]
    assert BUSY_TIMEOUT_S - 1.0 <= seen["answered_after_s"] <= BUSY_TIMEOUT_S + 5.0
    assert seen["sdk"]["retried"] >= 1  # its request timed out or was refused, and was resent
