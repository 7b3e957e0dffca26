"""`inferloop collector` as a real process for fault tests, and what it shows from outside:
its Prometheus metrics and the consumer group's committed offsets."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
from kafka.admin import KafkaAdminClient

from inferloop.settings import Settings

__all__ = ["collector_process", "committed_offsets", "metric"]


@contextlib.contextmanager
def collector_process(settings: Settings, log_path: Path) -> Iterator[subprocess.Popen]:
    """`python -m inferloop.app collector` with `settings` in its environment; stopped with
    SIGTERM at the end (killed if it does not stop in 30 s)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFERLOOP_")}
    env.update(settings.to_environment())
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "inferloop.app", "collector"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(30)


def metric(port: int, name: str, labels: str) -> float | None:
    """One sample from the collector's /metrics (None while it does not answer yet)."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    except httpx.HTTPError:
        return None
    found = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """The group's committed offset per partition of `topic`."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="inferloop-fault-tests")
    try:
        committed = admin.list_group_offsets(group)[group]
    finally:
        admin.close()
    return {
        partition.partition: offset.offset
        for partition, offset in committed.items()
        if partition.topic == topic
    }
