"""The embedded deployment's data directory fills up under an SDK sending over HTTP.

The data directory is a size-limited tmpfs (a real filesystem that runs out of space:
SQLite gets ENOSPC and reports SQLITE_FULL, as it would on a full disk); a ballast
file takes the last free byte. Ingest answers 503 naming the cause (and
`inferloop_ingest_store_up{source="http"}` reads 0), the SDK keeps at
most `buffer_events` and counts what it drops; once the ballast is deleted, ingest
resumes by itself, and what was stored plus what was counted as dropped is exactly
what was emitted.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

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

pytestmark = pytest.mark.slow

MODEL = "fault-disk-full"
BUFFER_EVENTS = 4_000
FILESYSTEM_MB = 64
STORE_UP = 'inferloop_ingest_store_up{source="http"}'


@monitor(model=MODEL, version="1")
def predict(x):
    return x


@contextlib.contextmanager
def small_filesystem(path: Path, size_mb: int) -> Iterator[Path]:
    """A tmpfs of `size_mb` mounted at `path` (needs CAP_SYS_ADMIN: CI runs as root)."""
    path.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a size-limited tmpfs at {path}: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


def fill(path: Path) -> int:
    """Write a ballast file at `path` until the filesystem has no byte left; its size."""
    written = 0
    chunk = 1 << 20
    with open(path, "wb", buffering=0) as ballast:
        while chunk >= 512:
            try:
                written += ballast.write(b"\0" * chunk)
            except OSError as error:
                assert error.errno == errno.ENOSPC, error
                chunk //= 2
    return written


def test_disk_full_answers_503_bounds_the_sdk_buffer_and_recovers_once_space_is_back(tmp_path):
    with small_filesystem(tmp_path / "data", FILESYSTEM_MB) as data_dir:
        settings = Settings(data_dir=data_dir)
        app, engine = build_platform(settings)
        ballast = data_dir / "ballast"
        began_ns = time.time_ns()
        answers: list[httpx.Response] = []

        def refused_for_space() -> bool:
            probe = EventFactory(model="fault-probe")
            batch = probe.batch_bytes([probe.inference() for _ in range(10)])
            answers.append(httpx.post(f"{base}/v1/events", content=batch, timeout=60))
            return answers[-1].status_code == 503

        with served(app) as base:
            configure(transport="http", endpoint=base, buffer_events=BUFFER_EVENTS, batch_size=500)
            with Traffic(predict) as traffic:
                wait_for(lambda: tally(engine, MODEL).rows >= 1_000, 60, "ingest under way")
                ballast_bytes = fill(ballast)
                full_at = time.monotonic()
                wait_for(refused_for_space, 60, "ingest to refuse for want of space")
                refusal = answers[-1]
                # Reads still work on a full disk, so the metrics answer and say so.
                assert f"{STORE_UP} 0.0" in httpx.get(f"{base}/metrics", timeout=30).text
                peak = 0

                def dropping() -> bool:
                    nonlocal peak
                    current = stats()
                    peak = max(peak, current["buffered"])
                    return current["dropped"].get("buffer_full", 0) > 0

                wait_for(dropping, 60, "the SDK's buffer to reach its bound and drop")
                full_for_s = time.monotonic() - full_at
                rows_when_freed = tally(engine, MODEL).rows
                os.unlink(ballast)
                freed_at = time.monotonic()
                # Serving goes on: the drop report rides on the first batch built after the
                # drops, so wait until calls made after them are stored (past the buffered
                # backlog). A drop followed by no call at all is reported with the next call.
                wait_for(
                    lambda: tally(engine, MODEL).rows > rows_when_freed + BUFFER_EVENTS + 500,
                    120,
                    "ingest to resume while calls go on",
                )
                emitted = traffic.stop()
            assert flush(120), "the SDK did not deliver its backlog once space was back"
            recovered_after_s = time.monotonic() - freed_at
            assert f"{STORE_UP} 1.0" in httpx.get(f"{base}/metrics", timeout=30).text

        sdk = stats()
        stored = tally(engine, MODEL)
        with engine.connect() as connection:
            complete = completeness(
                connection,
                MODEL,
                start_ns=began_ns - 60 * 10**9,
                end_ns=time.time_ns() + 60 * 10**9,
            )
        engine.dispose()
        with contextlib.closing(sqlite3.connect(data_dir / "inferloop.db")) as check:
            integrity = check.execute("PRAGMA integrity_check").fetchall()

    dropped = sdk["dropped"].get("buffer_full", 0)
    print(
        f"\nfault disk-full: emitted={emitted} stored={stored.rows} "
        f"duplicates={stored.duplicates} dropped_and_counted={dropped} sdk_dropped={sdk['dropped']} "
        f"failed={sdk['failed']} peak_buffered={peak}/{BUFFER_EVENTS} "
        f"ballast={ballast_bytes >> 20}MiB full_for={full_for_s:.1f}s "
        f"recovered_after={recovered_after_s:.1f}s completeness={complete}"
    )
    assert refusal.headers["Retry-After"] == "1"
    assert "database or disk is full" in refusal.json()["detail"]
    assert peak <= BUFFER_EVENTS
    assert sdk["failed"] == 0 and set(sdk["dropped"]) == {"buffer_full"}
    assert stored.duplicates == 0 and stored.rows == stored.rolled_up
    assert stored.rows + dropped == emitted  # every event stored or dropped and counted
    # Completeness has the SDK's report of the drops, and sees them as a sequence gap too,
    # since the emitter sent again after them.
    assert complete.received == stored.rows and complete.lost == dropped
    assert complete.sdk_dropped == {"buffer_full": dropped}
    assert integrity == [("ok",)]
