"""The emitter: bounded queue, sampling, internal errors, lifecycle, configuration, fork, and
the event builder's JSON paths. Delivery (retries, refusals, batching) is in test_sdk_delivery."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import GateTransport  # noqa: I001 - tests/sdk/conftest.py (rootdir import mode)

from inferloop.sdk import (
    ENV_QUEUE_SIZE,
    ENV_SAMPLE_RATE,
    ENV_TRANSPORT,
    MemoryTransport,
    configure,
    events_of,
    flush,
    monitor,
    register_extractor,
    shutdown,
    stats,
)
from inferloop.sdk._ids import prediction_id
from inferloop.sdk._serialize import loads


@monitor(model="fraud", version="1")
def predict(x):
    return x


def test_event_dropped_and_counted_when_queue_full(gate: GateTransport) -> None:
    configure(transport=gate, queue_size=10, flush_interval_s=0.01)
    predict(0)
    assert gate.entered.wait(5)  # the worker is now stuck sending the first batch
    started = time.perf_counter()
    for i in range(1, 16):
        predict(i)  # 10 fit in the queue, 5 are dropped
    assert time.perf_counter() - started < 0.05  # a stuck transport never slows the caller
    current = stats()
    assert current["dropped"] == {"queue_full": 5}
    assert current["queue_depth"] == 10
    gate.gate.set()
    assert flush(5)
    events = gate.events
    assert [event["inputs"]["rows"][0]["value"] for event in events] == list(range(11))
    # The platform learns of the drops from the next batch.
    reports = [event["dropped"] for event in events if "dropped" in event]
    assert reports == [{"queue_full": 5}]
    assert stats()["sent"] == 11


def test_sampling_keeps_latency_for_every_call_but_payload_for_a_share() -> None:
    transport = configure(transport="memory", sample_rate=0.0, flush_interval_s=0.01)
    for i in range(20):
        predict(i)
    assert flush(5)
    events = transport.events
    assert len(events) == 20
    assert all(event["inputs"] is None and event["outputs"] is None for event in events)
    assert all(event["latency_ns"] > 0 for event in events)

    transport = configure(transport="memory", sample_rate=0.5, flush_interval_s=0.01)
    for i in range(2_000):
        predict(i)
    assert flush(5)
    kept = sum(event["inputs"] is not None for event in transport.events)
    assert 800 < kept < 1_200


def test_internal_error_is_counted_and_never_raised(memory: MemoryTransport) -> None:
    class Odd:
        pass

    def broken(value, max_rows):
        raise RuntimeError("extractor bug")

    unregister = register_extractor(Odd, broken)
    try:
        assert isinstance(predict(Odd()), Odd)
        assert flush(5)
    finally:
        unregister()
    (event,) = memory.events
    assert event["inputs"] is None  # the payload is lost, the event is not
    assert stats()["internal_errors"] >= 1


def test_shutdown_delivers_then_returns_to_noop(memory: MemoryTransport) -> None:
    predict(1)
    assert shutdown(5)
    assert len(memory.events) == 1
    predict(2)  # no-op again
    assert stats()["enqueued"] == 0
    assert len(memory.events) == 1


def test_configure_argument_wins_over_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(ENV_TRANSPORT, "file")
    monkeypatch.setenv("INFERLOOP_FILE_PATH", str(tmp_path / "events.jsonl"))
    monkeypatch.setenv(ENV_QUEUE_SIZE, "123")
    monkeypatch.setenv(ENV_SAMPLE_RATE, "0.25")
    configure(flush_interval_s=0.01)
    predict(1)
    assert flush(5)
    from inferloop.sdk import _state

    assert _state.emitter.config.queue_size == 123
    assert _state.emitter.config.sample_rate == 0.25
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert events_of(lines[0])[0]["model"] == "fraud"

    transport = configure(transport="memory", queue_size=7)
    assert isinstance(transport, MemoryTransport)
    assert _state.emitter.config.queue_size == 7
    assert _state.emitter.config.sample_rate == 0.25  # still from the environment


def test_invalid_configuration_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError):
        configure(transport="carrier-pigeon")
    with pytest.raises(ValueError):
        configure(transport="memory", sample_rate=2)
    monkeypatch.setenv(ENV_QUEUE_SIZE, "lots")
    with pytest.raises(ValueError, match=ENV_QUEUE_SIZE):
        configure(transport="memory")


def test_transport_off_leaves_monitor_a_noop() -> None:
    assert configure(transport="off") is None
    predict(1)
    assert stats()["enqueued"] == 0


def test_stats_exported_as_prometheus_metrics(memory: MemoryTransport) -> None:
    prometheus_client = pytest.importorskip("prometheus_client")
    for i in range(3):
        predict(i)
    assert flush(5)
    text = prometheus_client.generate_latest().decode()
    assert "inferloop_sdk_sent_total 3.0" in text
    assert "inferloop_sdk_queue_depth 0.0" in text


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_child_emits_with_fresh_emitter_and_queue(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    configure(transport="file", file_path=str(path), flush_interval_s=0.01)
    predict("parent")
    assert flush(5)
    parent_id = stats()["emitter_id"]
    release = threading.Event()
    holder = threading.Thread(target=release.wait, daemon=True)  # a thread alive across fork
    holder.start()
    pid = os.fork()
    if pid == 0:  # child: must not deadlock on the parent's worker or queue
        code = 1
        try:
            predict("child")
            code = 0 if flush(5) and stats()["emitter_id"] != parent_id else 2
        finally:
            os._exit(code)
    release.set()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    predict("parent-again")
    assert flush(5)
    events = [event for line in path.read_text().splitlines() for event in events_of(line)]
    by_value = {event["inputs"]["rows"][0]["value"]: event for event in events}
    assert set(by_value) == {"parent", "child", "parent-again"}
    assert by_value["child"]["emitter_id"] != parent_id
    assert by_value["child"]["seq"] == 0
    assert by_value["parent-again"]["emitter_id"] == parent_id
    assert by_value["parent-again"]["seq"] == 1


def test_sdk_imports_and_emits_with_standard_library_only() -> None:
    script = """
import sys
for name in ("orjson", "msgspec", "numpy", "torch", "kafka", "pandas", "polars", "prometheus_client"):
    sys.modules[name] = None  # make every optional dependency unimportable
import inferloop.sdk as sdk
from inferloop.sdk import _serialize
assert _serialize.ENCODER_NAME == "json", _serialize.ENCODER_NAME
memory = sdk.configure(transport="memory", flush_interval_s=0.01)
@sdk.monitor(model="m")
def predict(a, b):
    return [a, b]
predict(1.5, float("nan"))
assert sdk.flush(5)
event = memory.events[0]
assert event["inputs"] == {"rows": [{"a": 1.5, "b": None}]}, event["inputs"]
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_direct_json_path_matches_the_general_event_builder() -> None:
    """The worker writes plain-scalar calls straight to JSON; it must equal the dict path."""
    from inferloop.sdk import _state

    configure(transport=MemoryTransport(), flush_interval_s=10)
    builder = _state.emitter._builder
    wrapped = monitor(model="fraud", version="2", tags={"a": "b"}, device="cpu")(lambda x, y: x)
    spec_object = wrapped.__inferloop_spec__
    row = {"x": 1.5, "y": "fr"}
    direct = loads(
        builder._scalar_event_json(
            spec_object, 1_700_000_000_000_000_000, 1234, row, float("nan"), 7
        )
    )
    general = builder._scalar_event(
        spec_object, 1_700_000_000_000_000_000, 1234, None, dict(row), float("nan"), 7, True
    )
    general["seq"] = direct["seq"]
    general["event_id"] = direct["event_id"]
    assert direct == json.loads(json.dumps(general).replace("NaN", "null"))


def test_scalar_json_template_writes_prediction_ids_like_prediction_id() -> None:
    from inferloop.sdk import _state

    configure(transport=MemoryTransport(), flush_interval_s=10)
    builder = _state.emitter._builder
    spec_object = monitor(model="fraud")(lambda x: x).__inferloop_spec__
    for number in (0, 7, 255, 2**40 + 3):
        event = loads(builder._scalar_event_json(spec_object, 10**18, 1, {"x": 1}, 1, number))
        assert event["prediction_id"] == prediction_id(builder.prediction_prefix, number)
