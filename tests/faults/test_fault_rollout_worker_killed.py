"""Two feedback rollout workers on one PostgreSQL store; one is killed with SIGKILL in the
middle of a check, holding the model's lock (`registry_queries.lock_model`, a row lock
inside the check's transaction). PostgreSQL ends the dead client's transaction, the lock
passes to the survivor, and the canary gets each check once and one rollback request."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
import sqlalchemy as sa
from waiting import wait_for

from inferloop.feedback import (
    REDEPLOY_REQUESTED,
    ROLLBACK_REQUESTED,
    VersionState,
    move_version,
    register_version,
    start_canary,
    version_states,
)
from inferloop.store import Event, create_engine_for, upgrade
from inferloop.store.feedback_queries import feedback_requests, rollout_checks

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

MODEL, PROD = "fault-ranker", "production"
SECOND = 1_000_000_000
MS = 1_000_000
T0 = 1_700_000_000 * SECOND
CANARY_AT = T0 + 3600 * SECOND
INTERVAL_S = 60
INTERVALS = 3
NOW = CANARY_AT + INTERVALS * INTERVAL_S * SECOND + 31 * SECOND

_WORKER = """
import pathlib, sys, time
from inferloop.feedback import MetricOptions, RolloutGuard, RolloutWorker
from inferloop.store import create_engine_for

url, now_ns, interval_s, mode, marker = sys.argv[1:6]


def guard():
    if mode == "hang":  # the seam: stop inside the check, holding the model's lock
        pathlib.Path(marker).touch()
        time.sleep(3600)
    options = MetricOptions(min_effect=0.05, min_samples=200, budget=1000)
    return RolloutGuard(alpha=0.05, error_rate=options, latency=options, accuracy=None)


worker = RolloutWorker(
    create_engine_for(url), destinations=["hook"], guard=guard,
    interval_s=float(interval_s), clock=lambda: int(now_ns),
)
while True:
    worker.run_once()
    time.sleep(0.1)
"""


def _add_events(engine, version: int, start_ns: int, count: int, slow: float = 1.0) -> None:
    """`count` calls spread over one interval; latencies 10-20 ms (times `slow`)."""
    step = INTERVAL_S * SECOND // count
    rows = [
        {
            "event_id": uuid.uuid4().hex,
            "emitter_id": "fault",
            "seq": i,
            "model": MODEL,
            "version": str(version),
            "environment": PROD,
            "start_time_ns": start_ns + i * step,
            "latency_ns": int((10 * MS + (i * 37 % 100) * MS // 10) * slow),
            "device_time_ns": None,
            "status": "ok",
            "error_type": None,
            "error_message": None,
            "batch_size": 1,
            "device": "cpu",
            "inputs": None,
            "outputs": {"rows": [{"value": 1}]},
            "prediction_id": f"{version}-{start_ns}-{i}",
            "tags": {},
            "received_at_ns": start_ns,
        }
        for i in range(count)
    ]
    with engine.begin() as connection:
        connection.execute(sa.insert(Event.__table__), rows)


def _slow_canary(engine) -> int:
    """v1 live with an hour of traffic; v2 in canary, 30 % slower for INTERVALS windows."""
    with engine.begin() as connection:
        v1 = register_version(connection, MODEL, artifact_uri="s3://m/1", who="ci", now_ns=T0)
    for to in (VersionState.CANARY, VersionState.LIVE):
        with engine.begin() as connection:
            move_version(
                connection, MODEL, v1.version, to, environment=PROD, who="ops", why="first",
                now_ns=T0,
            )  # fmt: skip
    for minute in range(60):
        _add_events(engine, 1, T0 + minute * INTERVAL_S * SECOND, 50)
    with engine.begin() as connection:
        v2 = register_version(
            connection, MODEL, artifact_uri="s3://m/2", who="ci", now_ns=CANARY_AT - SECOND
        )
        start_canary(
            connection, MODEL, v2.version, environment=PROD, who="ci", why="retrained",
            now_ns=CANARY_AT, destinations=["hook"], verdict={"accuracy": 0.91},
        )  # fmt: skip
    for k in range(INTERVALS):
        start = CANARY_AT + k * INTERVAL_S * SECOND
        _add_events(engine, 1, start, 600)
        _add_events(engine, v2.version, start, 600, slow=1.3)
    return v2.version


def _spawn(url: str, mode: str, marker: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFERLOOP_")}
    return subprocess.Popen(
        [sys.executable, "-c", _WORKER, url, str(NOW), str(INTERVAL_S), mode, marker],
        env=env,
        stdin=subprocess.DEVNULL,
    )


def _waiting_on_a_lock(engine) -> bool:
    """True while some session of this database waits for a lock (the survivor)."""
    with engine.connect() as connection:
        return bool(
            connection.scalar(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
        )


def _requests(engine) -> list:
    with engine.connect() as connection:
        return feedback_requests(connection, model=MODEL)


def test_rollout_worker_killed_mid_check_survivor_decides_once(postgres_url, tmp_path):
    upgrade(postgres_url)
    engine = create_engine_for(postgres_url)
    version = _slow_canary(engine)
    marker = tmp_path / "checking"
    victim = _spawn(postgres_url, "hang", str(marker))
    survivor = None
    try:
        wait_for(marker.exists, 120, "the victim to be inside a check")
        survivor = _spawn(postgres_url, "serve", str(tmp_path / "unused"))
        wait_for(lambda: _waiting_on_a_lock(engine), 120, "the survivor to queue on the lock")
        with engine.connect() as connection:
            assert rollout_checks(connection, MODEL, PROD, version) == []
        victim.send_signal(signal.SIGKILL)
        assert victim.wait(30) == -signal.SIGKILL
        killed_at = time.monotonic()
        wait_for(
            lambda: any(r["type"] == ROLLBACK_REQUESTED for r in _requests(engine)),
            120,
            "the survivor to decide the rollback",
        )
        decided_after_s = time.monotonic() - killed_at
        time.sleep(1.0)  # more runs of the survivor: a second decision would appear now
        assert survivor.poll() is None, "the survivor exited"
    finally:
        for process in (victim, survivor):
            if process is not None:
                if process.poll() is None:
                    process.kill()
                process.wait(30)

    with engine.connect() as connection:
        checks = rollout_checks(connection, MODEL, PROD, version)
        states = {s.version: s.state for s in version_states(connection, MODEL, environment=PROD)}
    requests = _requests(engine)
    engine.dispose()
    print(
        f"\nfault rollout-killed: checks={[c['check_number'] for c in checks]} "
        f"outcomes={[c['outcome'] for c in checks]} requests={[r['type'] for r in requests]} "
        f"decided_after_kill={decided_after_s:.1f}s"
    )
    assert [c["check_number"] for c in checks] == list(range(1, len(checks) + 1))
    assert checks[-1]["outcome"] == "fail"
    assert sorted(r["type"] for r in requests) == [REDEPLOY_REQUESTED, ROLLBACK_REQUESTED]
    assert states == {1: VersionState.LIVE, version: VersionState.ROLLED_BACK}
    assert decided_after_s <= 10
