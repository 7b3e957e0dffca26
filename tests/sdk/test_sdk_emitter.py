"""The emitter: bounded queue, drops by reason, retries, buffer bound, lifecycle, fork."""

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
from waiting import wait_for

from inferloop.sdk import (
    ENV_QUEUE_SIZE,
    ENV_SAMPLE_RATE,
    ENV_TRANSPORT,
    Closeable,
    FileTransport,
    KafkaTransport,
    MemoryTransport,
    PartiallyRejected,
    PermanentTransportError,
    PipeliningTransport,
    configure,
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


class FlakyTransport:
    """Fails the first `failures` sends with a retryable error, then delivers."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or ConnectionError("receiver down")
        self.attempts = 0
        self.batches: list[dict] = []

    def send(self, batch: bytes, *, key: str) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise self.error
        self.batches.append(loads(batch))

    @property
    def events(self) -> list[dict]:
        return [event for batch in self.batches for event in batch["events"]]


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


def test_transport_failure_retried_with_backoff_then_delivered() -> None:
    transport = FlakyTransport(failures=3)
    configure(transport=transport, flush_interval_s=0.01, retry_backoff_s=0.01)
    for i in range(5):
        predict(i)
    assert flush(5)
    current = stats()
    assert current["retried"] == 3
    assert current["sent"] == 5 and current["failed"] == 0
    assert [event["seq"] for event in transport.events] == [0, 1, 2, 3, 4]


def test_permanent_failure_counted_as_failed_and_reported() -> None:
    transport = FlakyTransport(failures=1, error=PermanentTransportError("HTTP 400"))
    configure(transport=transport, flush_interval_s=0.01)
    predict(1)
    wait_for(lambda: stats()["failed"] == 1, timeout=5.0, what="the refused batch")
    predict(2)
    assert flush(5)
    (event,) = transport.events
    assert event["seq"] == 1  # seq 0 was lost: a gap the platform can see
    assert event["dropped"] == {"send_failed": 1}
    assert stats()["retried"] == 0


def test_buffer_bound_drops_and_counts_while_transport_down() -> None:
    transport = FlakyTransport(failures=10**9)
    configure(
        transport=transport,
        flush_interval_s=0.01,
        batch_size=10,
        buffer_events=50,
        retry_backoff_s=0.01,
        retry_backoff_max_s=0.02,
    )
    started = time.perf_counter()
    for i in range(200):
        predict(i)
        if i % 20 == 0:
            time.sleep(0.02)  # let the worker drain into its bounded buffer
    call_time = time.perf_counter() - started
    assert not flush(0.3)  # nothing can be delivered while the receiver is down
    wait_for(lambda: stats()["queue_depth"] == 0, timeout=5.0, what="an empty queue")
    transport.failures = 0  # the receiver recovers
    assert flush(5)
    predict(200)  # one event after the outage makes every gap visible
    assert flush(5)
    current = stats()
    delivered = transport.events
    assert len(delivered) == current["sent"] <= 50 + 1
    dropped = sum(current["dropped"].values())
    assert dropped > 0
    assert len(delivered) + dropped == 201
    seqs = [event["seq"] for event in delivered]
    assert len(set(seqs)) == len(seqs)
    assert max(seqs) + 1 - len(seqs) == current["dropped"].get("buffer_full", 0)
    reported = sum(sum(event.get("dropped", {}).values()) for event in delivered)
    assert reported == dropped
    assert call_time < 1.0 + 10 * 0.02


def test_flush_returns_false_when_transport_cannot_deliver_in_time() -> None:
    configure(transport=FlakyTransport(failures=10**9), flush_interval_s=0.01, retry_backoff_s=0.01)
    predict(1)
    started = time.monotonic()
    assert flush(0.2) is False
    assert time.monotonic() - started < 1.0


def test_batches_hold_one_model_each_and_share_one_sequence() -> None:
    transport = MemoryTransport()
    configure(transport=transport, flush_interval_s=0.05)
    a = monitor(model="a")(lambda x: x)
    b = monitor(model="b")(lambda x: x)
    for i in range(6):
        (a if i % 2 else b)(i)
    assert flush(5)
    for key, batch in zip(transport.keys, transport.batches, strict=True):
        assert {event["model"] for event in batch["events"]} == {key}
    assert sorted(event["seq"] for event in transport.events) == list(range(6))
    assert len({batch["emitter_id"] for batch in transport.batches}) == 1


def test_batches_split_by_size() -> None:
    transport = MemoryTransport()
    configure(transport=transport, flush_interval_s=0.5, batch_size=7)
    for i in range(30):
        predict(i)
    assert flush(5)
    assert all(len(batch["events"]) <= 7 for batch in transport.batches)
    assert len(transport.events) == 30


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
    assert json.loads(lines[0])["events"][0]["model"] == "fraud"

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
    events = [
        event for line in path.read_text().splitlines() for event in json.loads(line)["events"]
    ]
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


class ScriptedTransport(FlakyTransport):
    """Raises the given errors on the first sends, in order, then delivers."""

    def __init__(self, *errors: Exception) -> None:
        super().__init__(failures=0)
        self.errors = list(errors)

    def send(self, batch: bytes, *, key: str) -> None:
        self.attempts += 1
        if self.errors:
            raise self.errors.pop(0)
        self.batches.append(loads(batch))


def test_partly_rejected_batch_counts_only_the_rejected_events() -> None:
    transport = ScriptedTransport(PartiallyRejected([1, 3], "HTTP 422"))
    configure(transport=transport, flush_interval_s=10)
    for i in range(5):
        predict(i)
    assert flush(5)  # wakes the worker: the five records go as one batch
    predict(5)
    assert flush(5)
    current = stats()
    assert current["failed"] == 2 and current["sent"] == 3 + 1 and current["retried"] == 0
    assert current["batches"] == 2
    (after,) = transport.events  # the partly stored batch is not sent again
    assert after["dropped"] == {"send_failed": 2}


def test_report_on_a_rejected_first_event_is_sent_again() -> None:
    """The drop report rides on a batch's first event: if the receiver refused that event,
    the report was not stored and must go with the next batch."""
    transport = ScriptedTransport(PermanentTransportError("HTTP 400"), PartiallyRejected([0]))
    configure(transport=transport, flush_interval_s=10)
    predict(1)
    assert flush(5)  # refused whole: one event lost, reported on the next batch
    predict(2)
    predict(3)
    assert flush(5)  # its first event, carrying that report, is refused
    predict(4)
    assert flush(5)
    current = stats()
    assert current["failed"] == 2 and current["sent"] == 2
    reported = sum(event.get("dropped", {}).get("send_failed", 0) for event in transport.events)
    assert reported == current["failed"]
    assert transport.events[-1]["dropped"] == {"send_failed": 2}


class PipelinedTransport:
    """Takes batches with `submit` and acknowledges them at once; `send` must not be used."""

    class Ack:
        done = True
        error = None

    def __init__(self) -> None:
        self.batches: list[dict] = []

    def send(self, batch: bytes, *, key: str) -> None:
        raise AssertionError("a pipelining transport is sent to with submit()")

    def submit(self, batch: bytes, *, key: str, on_done=None) -> PipelinedTransport.Ack:
        self.batches.append(loads(batch))
        if on_done is not None:
            on_done()
        return self.Ack()


def test_transport_capabilities_are_protocols() -> None:
    assert isinstance(KafkaTransport("127.0.0.1:1", "topic"), PipeliningTransport)
    assert isinstance(PipelinedTransport(), PipeliningTransport)
    assert not isinstance(MemoryTransport(), PipeliningTransport)
    assert isinstance(FileTransport(), Closeable)
    assert isinstance(KafkaTransport("127.0.0.1:1", "topic"), Closeable)
    assert not isinstance(MemoryTransport(), Closeable)


def test_pipelining_transport_receives_batches_through_submit() -> None:
    transport = PipelinedTransport()
    configure(transport=transport, flush_interval_s=0.01)
    for i in range(3):
        predict(i)
    assert flush(5)
    assert [event["seq"] for batch in transport.batches for event in batch["events"]] == [0, 1, 2]
    assert stats()["sent"] == 3


def test_scalar_json_template_writes_prediction_ids_like_prediction_id() -> None:
    from inferloop.sdk import _state

    configure(transport=MemoryTransport(), flush_interval_s=10)
    builder = _state.emitter._builder
    spec_object = monitor(model="fraud")(lambda x: x).__inferloop_spec__
    for number in (0, 7, 255, 2**40 + 3):
        event = loads(builder._scalar_event_json(spec_object, 10**18, 1, {"x": 1}, 1, number))
        assert event["prediction_id"] == prediction_id(builder.prediction_prefix, number)
