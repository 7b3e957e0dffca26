"""Two analyzer processes on one PostgreSQL store; one is killed with SIGKILL while it
holds a model's lease. The survivor takes that model once the lease runs out, every
model with injected drift gets its findings opened, and no finding exists twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import sqlalchemy as sa
from ingest_events import EventFactory
from waiting import wait_for

from inferloop.collector import IngestPipeline, InputMessage
from inferloop.store import create_engine_for, upgrade

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

LEASE_S = 4.0
INTERVAL_S = 1.0
MODELS = [f"fault-analyzer-{i}" for i in range(6)]
DRIFTED = set(MODELS[::2])
HOUR_NS = 3600 * 10**9

_ANALYZER = """
import sys, time
from inferloop.analyzer import AnalyzerConfig, AnalyzerWorker
from inferloop.settings import Settings
from inferloop.store import create_engine_for

url, worker_id, data_dir, lease_s, interval_s = sys.argv[1:6]
config = AnalyzerConfig(
    window_s=3600, baseline_events=500, confirm_runs=2, confirm_after_s=0,
    lease_s=float(lease_s), render_reports=False,
)
worker = AnalyzerWorker(
    Settings(data_dir=data_dir), create_engine_for(url), interval_s=float(interval_s),
    config=config, worker_id=worker_id,
)
while True:
    worker.run_once()
    time.sleep(0.05)
"""


def _ingest(engine, now_ns: int) -> None:
    """Two hours of a stable feature, then an hour in which it drifts (for DRIFTED)."""
    pipeline = IngestPipeline(engine)
    rng = np.random.default_rng(7)
    for model in MODELS:
        factory = EventFactory(model=model)
        events = []
        for hour, count in ((3, 900), (2, 900), (1, 900)):
            shift = 25.0 if hour == 1 and model in DRIFTED else 0.0
            for offset in np.sort(rng.integers(0, HOUR_NS - 10**9, count)):
                event = factory.inference(start_time_ns=int(now_ns - hour * HOUR_NS + offset))
                event["inputs"] = {"rows": [{"age": float(rng.normal(40 + shift, 8))}]}
                events.append(event)
        for start in range(0, len(events), 500):
            message = InputMessage(factory.batch_bytes(events[start : start + 500]))
            result = pipeline.ingest([message], source="http")
            assert not result.rejections, result.rejections[:1]


def _spawn(url: str, worker_id: str, data_dir: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFERLOOP_")}
    return subprocess.Popen(
        [sys.executable, "-c", _ANALYZER, url, worker_id, data_dir, str(LEASE_S), str(INTERVAL_S)],
        env=env,
        stdin=subprocess.DEVNULL,
    )


def _leases(engine) -> list:
    with engine.connect() as connection:
        return connection.execute(
            sa.text("SELECT model, owner, expires_at_ns, last_run_ns FROM analyzer_leases")
        ).all()


def _findings(engine) -> list:
    with engine.connect() as connection:
        return connection.execute(
            sa.text("SELECT model, fingerprint, status, occurrences FROM findings")
        ).all()


def test_analyzer_killed_mid_run_lease_passes_to_the_survivor_and_no_finding_doubles(
    postgres_url, tmp_path
):
    upgrade(postgres_url)
    engine = create_engine_for(postgres_url)
    _ingest(engine, time.time_ns())
    victim = _spawn(postgres_url, "victim", str(tmp_path / "victim"))
    survivor = _spawn(postgres_url, "survivor", str(tmp_path / "survivor"))
    try:
        held: list = []

        def victim_holds_a_model() -> bool:
            now = time.time_ns()
            held[:] = [r for r in _leases(engine) if r.owner == "victim" and r.expires_at_ns > now]
            return bool(held)

        wait_for(victim_holds_a_model, 120, "the victim to hold a model's lease")
        victim.send_signal(signal.SIGKILL)
        assert victim.wait(30) == -signal.SIGKILL
        killed_at_ns = time.time_ns()
        orphan = held[0]
        assert orphan.expires_at_ns > killed_at_ns, "killed too late: the lease had ended"

        def survivor_ran_the_orphan() -> bool:
            row = next(r for r in _leases(engine) if r.model == orphan.model)
            return row.last_run_ns is not None and row.last_run_ns > killed_at_ns

        wait_for(survivor_ran_the_orphan, LEASE_S + 60, "the survivor to analyse the orphan")
        took_over_after_s = (time.time_ns() - killed_at_ns) / 1e9

        def drifted_models_opened() -> bool:
            opened = {r.model for r in _findings(engine) if r.status == "open"}
            return opened >= DRIFTED

        wait_for(drifted_models_opened, 180, "the drifted models' findings to open")
        time.sleep(2 * INTERVAL_S)  # a few more runs: a double would appear now
        assert survivor.poll() is None, "the survivor exited"
    finally:
        for process in (victim, survivor):
            if process.poll() is None:
                process.kill()
            process.wait(30)

    findings = _findings(engine)
    engine.dispose()
    fingerprints = [r.fingerprint for r in findings if r.status in ("pending", "open")]
    print(
        f"\nfault analyzer-killed: models={len(MODELS)} orphan={orphan.model} "
        f"lease={LEASE_S:.0f}s left_at_kill={(orphan.expires_at_ns - killed_at_ns) / 1e9:.1f}s "
        f"survivor_took_over_after={took_over_after_s:.1f}s findings={len(findings)} "
        f"active={len(fingerprints)} distinct={len(set(fingerprints))}"
    )
    assert took_over_after_s <= LEASE_S + 5 * INTERVAL_S + 5
    assert len(fingerprints) == len(set(fingerprints))  # no finding twice
    assert {r.model for r in findings} <= DRIFTED  # and none for the stable models
