"""Fault-test fixtures: throwaway services a test may stop, and an SDK left unconfigured.

A missing binary (PostgreSQL's, Kafka's jars, java) skips with the reason, or fails
under INFERLOOP_REQUIRE_SERVICES=1 as the shared services do (see tests/conftest.py).
"""

from __future__ import annotations

import gc
import logging
import os
import shutil
from collections.abc import Iterator

import pytest
from fault_services import (
    KAFKA_LIBS,
    ThrowawayKafka,
    ThrowawayPostgres,
    postgres_binaries,
    throwaway_postgres,
)

from inferloop.sdk import shutdown

# Read at import: the root conftest clears INFERLOOP_* before each test.
_REQUIRE_SERVICES = os.environ.get("INFERLOOP_REQUIRE_SERVICES") == "1"


def _missing(reason: str) -> None:
    if _REQUIRE_SERVICES:
        pytest.fail(f"{reason} (required because INFERLOOP_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _sdk_unconfigured_after_test() -> Iterator[None]:
    yield
    shutdown(timeout=1.0)


@pytest.fixture
def own_postgres() -> Iterator[ThrowawayPostgres]:
    """A started PostgreSQL cluster of the test's own, which it may stop and start."""
    if postgres_binaries() is None:
        _missing("no PostgreSQL binaries under /usr/lib/postgresql; run `make services` once")
    with throwaway_postgres() as cluster:
        yield cluster


@pytest.fixture
def own_kafka(tmp_path) -> Iterator[ThrowawayKafka]:
    """A started single-node broker of the test's own, which it may stop and start."""
    if not (KAFKA_LIBS / ".complete").exists() or shutil.which("java") is None:
        _missing(f"no Kafka jars in {KAFKA_LIBS} or no java; run `make services` once")
    # kafka-python logs refused connections with the exception as an argument, and pytest
    # keeps those records (and through them the unclosed sockets) until the session ends:
    # quiet it, and collect the sockets inside the test, whose marks filter the warning.
    kafka_logger = logging.getLogger("kafka")
    level = kafka_logger.level
    kafka_logger.setLevel(logging.CRITICAL)
    broker = ThrowawayKafka(tmp_path / "kafka")
    try:
        broker.start()
        yield broker
    finally:
        shutdown(timeout=2.0)
        broker.remove()
        gc.collect()
        kafka_logger.setLevel(level)
