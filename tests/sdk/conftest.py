"""SDK test fixtures: every test leaves the SDK unconfigured, as it found it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from inferloop.sdk import MemoryTransport, configure, shutdown
from inferloop.sdk._columns import expand
from inferloop.sdk._serialize import loads


@pytest.fixture(autouse=True)
def _sdk_unconfigured_after_test() -> Iterator[None]:
    shutdown(timeout=1.0)
    yield
    shutdown(timeout=1.0)


@pytest.fixture
def memory() -> MemoryTransport:
    """The SDK configured with the in-memory transport and a short batching interval."""
    transport = configure(transport="memory", flush_interval_s=0.01)
    assert isinstance(transport, MemoryTransport)
    return transport


class GateTransport:
    """A transport that holds every send until the test opens the gate (a designed seam)."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.batches: list[dict[str, Any]] = []

    def send(self, batch: bytes, *, key: str) -> None:
        self.entered.set()
        if not self.gate.wait(10):
            raise TimeoutError("gate never opened")
        self.batches.append(expand(loads(batch)))

    @property
    def events(self) -> list[dict[str, Any]]:
        return [event for batch in self.batches for event in batch["events"]]


@pytest.fixture
def gate() -> GateTransport:
    return GateTransport()


@pytest.fixture(params=["hotpath", "python"])
def wrapper_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test with plain functions wrapped by the C hot path and by the Python wrapper:
    the two must behave alike. `make test` builds the extension, so its absence fails."""
    from inferloop.sdk import _monitor

    if request.param == "hotpath":
        assert _monitor._hotpath is not None, "inferloop.sdk._hotpath was not built"
    monkeypatch.setattr(_monitor, "use_hotpath", request.param == "hotpath")
    return request.param
