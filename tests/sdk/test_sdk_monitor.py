"""The `monitor` decorator / context manager on the serving side, read back in memory."""

from __future__ import annotations

import asyncio
import inspect
import threading

import pytest
from conftest import GateTransport  # noqa: I001 - tests/sdk/conftest.py (rootdir import mode)

from inferloop import sdk
from inferloop.sdk import (
    MemoryTransport,
    configure,
    flush,
    last_prediction_id,
    log_label,
    monitor,
    stats,
)
from inferloop.sdk._record import CallExtras, CallRecord, LabelRecord

# Every test here runs with the C wrapper and with the Python one (conftest.wrapper_kind).
pytestmark = pytest.mark.usefixtures("wrapper_kind")


def test_unconfigured_monitor_calls_model_untouched() -> None:
    seen = []

    @monitor(model="fraud", version="3")
    def predict(features, threshold=0.5):
        seen.append((features, threshold))
        return features

    payload = {"age": 31}
    assert predict(payload, threshold=0.7) is payload
    assert seen == [(payload, 0.7)]
    assert stats()["enqueued"] == 0


def test_monitor_keeps_wrapped_signature_name_and_doc() -> None:
    def predict(features: dict, *, threshold: float = 0.5) -> float:
        """Scores one row."""
        return 0.0

    wrapped = monitor(model="fraud")(predict)
    assert wrapped.__name__ == "predict"
    assert wrapped.__doc__ == "Scores one row."
    assert inspect.signature(wrapped) == inspect.signature(predict)
    assert wrapped.__wrapped__ is predict


def test_call_becomes_inference_event_with_inputs_outputs_and_latency(
    memory: MemoryTransport,
) -> None:
    @monitor(model="fraud", version="3", tags={"region": "eu"})
    def predict(age, country, amount):
        return 0.25

    assert predict(31, "fr", amount=12.5) == 0.25
    assert flush(5)
    (event,) = memory.events
    assert event["kind"] == "inference"
    assert event["model"] == "fraud" and event["version"] == "3"
    assert event["status"] == "ok" and event["error_type"] is None
    assert event["inputs"] == {"rows": [{"age": 31, "country": "fr", "amount": 12.5}]}
    assert event["outputs"] == {"rows": [{"value": 0.25}]}
    assert event["tags"] == {"region": "eu"}
    assert event["batch_size"] == 1 and event["device"] == "cpu"
    assert 0 < event["latency_ns"] < 1_000_000_000
    assert event["seq"] == 0 and event["emitter_id"] == memory.batches[0]["emitter_id"]
    assert memory.keys == ["fraud"]


def test_model_exception_passes_through_and_is_recorded(memory: MemoryTransport) -> None:
    class ModelError(RuntimeError):
        pass

    error = ModelError("x" * 5_000)

    @monitor(model="fraud")
    def predict(row):
        raise error

    with pytest.raises(ModelError) as raised:
        predict({"a": 1})
    assert raised.value is error
    assert flush(5)
    (event,) = memory.events
    assert event["status"] == "error"
    assert event["error_type"] == "ModelError"
    assert event["error_message"] == "x" * 1_000
    assert event["outputs"] is None
    assert event["inputs"] == {"rows": [{"a": 1}]}


def test_async_function_is_monitored_and_awaited(memory: MemoryTransport) -> None:
    @monitor(model="async-model")
    async def predict(x):
        await asyncio.sleep(0.01)
        return x * 2

    assert inspect.iscoroutinefunction(predict)

    async def main():
        value = await predict(21)
        return value, last_prediction_id()

    value, prediction = asyncio.run(main())
    assert value == 42
    assert flush(5)
    (event,) = memory.events
    assert event["latency_ns"] >= 10_000_000
    assert event["prediction_id"] == prediction
    assert event["outputs"] == {"rows": [{"value": 42}]}


def test_async_exception_passes_through_and_is_recorded(memory: MemoryTransport) -> None:
    @monitor(model="async-model")
    async def predict(x):
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        asyncio.run(predict(1))
    assert flush(5)
    assert memory.events[0]["error_type"] == "ValueError"


def test_method_is_monitored_without_self_in_inputs(memory: MemoryTransport) -> None:
    class Model:
        def __init__(self):
            self.bias = 1

        @monitor(model="method-model")
        def predict(self, x, y):
            return x + y + self.bias

    assert Model().predict(1, y=2) == 4
    assert flush(5)
    assert memory.events[0]["inputs"] == {"rows": [{"x": 1, "y": 2}]}


def test_context_manager_records_block_with_explicit_payload(memory: MemoryTransport) -> None:
    with monitor(model="pipeline", version="7") as call:
        call.set_inputs([{"a": 1}, {"a": 2}])
        call.set_outputs([0.1, 0.2])
        call.tag("route", "fast")
        prediction = call.prediction_id
    assert flush(5)
    (event,) = memory.events
    assert event["model"] == "pipeline" and event["version"] == "7"
    assert event["inputs"] == {"rows": [{"a": 1}, {"a": 2}]}
    assert event["outputs"] == {"rows": [{"value": 0.1}, {"value": 0.2}]}
    assert event["batch_size"] == 2
    assert event["tags"] == {"route": "fast"}
    assert event["prediction_id"] == prediction == last_prediction_id()


def test_context_manager_records_error_and_reraises(memory: MemoryTransport) -> None:
    block = monitor(model="pipeline")
    with pytest.raises(KeyError), block:
        raise KeyError("missing")
    with block:  # the same monitor object is reusable
        pass
    assert flush(5)
    assert [event["status"] for event in memory.events] == ["error", "ok"]
    assert memory.events[0]["error_type"] == "KeyError"


def test_context_manager_unconfigured_still_gives_prediction_id() -> None:
    with monitor(model="pipeline") as call:
        pass
    assert isinstance(call.prediction_id, str) and len(call.prediction_id) == 32


def test_torch_module_wrap_records_forward_calls(memory: MemoryTransport) -> None:
    torch = pytest.importorskip("torch")
    layer = torch.nn.Linear(4, 2)
    wrapped = monitor.wrap(layer, model="linear", version="1")
    assert wrapped is layer
    batch = torch.randn(3, 4)
    expected = torch.nn.functional.linear(batch, layer.weight, layer.bias)
    assert torch.allclose(layer(batch), expected)
    assert flush(5)
    (event,) = memory.events
    assert event["model"] == "linear"
    assert event["batch_size"] == 3
    assert event["device"] == "cpu"
    assert len(event["inputs"]["rows"]) == 3
    assert set(event["inputs"]["rows"][0]) == {"f0", "f1", "f2", "f3"}


def test_prediction_id_generated_per_call_and_exposed(memory: MemoryTransport) -> None:
    @monitor(model="fraud")
    def predict(x):
        return last_prediction_id()  # also visible inside the model call

    inside = [predict(i) for i in range(3)]
    outside = last_prediction_id()
    assert flush(5)
    ids = [event["prediction_id"] for event in memory.events]
    assert ids == inside and outside == ids[-1]
    assert len(set(ids)) == 3


def test_prediction_id_taken_from_argument_or_input_key(memory: MemoryTransport) -> None:
    @monitor(model="fraud", prediction_id="request_id")
    def predict(features, request_id=None):
        return 1

    @monitor(model="fraud", prediction_id="request_id")
    def predict_row(row):
        return 1

    predict({"a": 1}, request_id="req-1")
    predict({"a": 1}, "req-2")
    predict_row({"request_id": "req-3", "a": 1})
    assert last_prediction_id() == "req-3"
    assert flush(5)
    assert [event["prediction_id"] for event in memory.events] == ["req-1", "req-2", "req-3"]


def test_log_label_joins_by_prediction_id(memory: MemoryTransport) -> None:
    @monitor(model="fraud")
    def predict(x):
        return x

    predict(1)
    prediction = last_prediction_id()
    log_label(prediction, {"fraud": True}, model="fraud")
    assert flush(5)
    inference, label = memory.events
    assert label["kind"] == "label"
    assert label["prediction_id"] == inference["prediction_id"] == prediction
    assert label["label"] == {"fraud": True}
    assert label["seq"] == inference["seq"] + 1


def test_batch_size_inferred_and_overridable(memory: MemoryTransport) -> None:
    np = pytest.importorskip("numpy")

    @monitor(model="m")
    def predict(batch):
        return batch

    @monitor(model="m", batch_size=lambda batch: 99)
    def predict_fixed(batch):
        return batch

    predict(np.zeros((5, 3)))
    predict([1, 2, 3, 4])
    predict_fixed(np.zeros((5, 3)))
    assert flush(5)
    assert [event["batch_size"] for event in memory.events] == [5, 4, 99]


def test_monitor_is_thread_safe_under_concurrent_calls(memory: MemoryTransport) -> None:
    @monitor(model="m")
    def predict(x):
        return x

    def work():
        for i in range(2_000):
            predict(i)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert flush(10)
    events = memory.events
    assert len(events) == 16_000
    assert sorted(event["seq"] for event in events) == list(range(16_000))
    assert len({event["prediction_id"] for event in events}) == 16_000
    assert stats()["sent"] == 16_000


def test_exported_names_are_all_public_and_importable() -> None:
    for name in sdk.__all__:
        assert hasattr(sdk, name), name
    public = {name for name in dir(sdk) if not name.startswith("_")}
    assert public - set(sdk.__all__) <= {"annotations"}
    for required in ("monitor", "configure", "log_label", "flush", "shutdown", "stats"):
        assert required in sdk.__all__


def test_cuda_timing_requested_without_a_device_leaves_call_and_event_intact(
    memory: MemoryTransport,
) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("checks the CPU-only fallback")

    @monitor(model="m", cuda=True)
    def predict(x):
        return x + 1

    assert predict(1) == 2
    with monitor(model="m", cuda=True):
        pass
    assert flush(5)
    assert [event["device_time_ns"] for event in memory.events] == [None, None]
    assert stats()["internal_errors"] == 0


def test_what_the_wrappers_queue_reads_back_as_typed_records(gate: GateTransport) -> None:
    """The hot path builds plain tuples for speed: their layout must be CallRecord's."""
    from inferloop.sdk import _state

    configure(transport=gate, flush_interval_s=0.01)

    @monitor(model="fraud")
    def predict(x):
        if x < 0:
            raise ValueError("negative")
        return x * 2

    @monitor(model="fraud")
    async def apredict(x):
        return x + 1

    try:
        predict(0)
        assert gate.entered.wait(5)  # the worker is held in send: what follows stays queued
        queue = _state.emitter.queue
        queue.clear()
        predict(3)
        with pytest.raises(ValueError):
            predict(-1)
        asyncio.run(apredict(4))
        with monitor(model="block") as call:
            call.set_inputs([1, 2])
        log_label(last_prediction_id(), True, model="fraud")
        ok, failed, awaited, block, label = list(queue)
    finally:
        gate.gate.set()
    assert all(len(raw) == len(CallRecord._fields) for raw in (ok, failed, awaited, block))
    ok, failed, awaited, block = map(CallRecord._make, (ok, failed, awaited, block))
    assert ok.spec is predict.__inferloop_spec__ and ok.spec.model == "fraud"
    assert ok.args == (3,) and ok.kwargs == {} and ok.result == 6 and ok.error is None
    assert isinstance(ok.prediction, int) and ok.extras is None and ok.latency > 0
    assert isinstance(failed.error, ValueError) and failed.result is None
    assert awaited.args == (4,) and awaited.result == 5
    assert block.spec.model == "block" and isinstance(block.extras, CallExtras)
    assert block.extras.inputs == [1, 2] and block.args == () and block.kwargs == {}
    assert isinstance(label, LabelRecord) and label.model == "fraud" and label.label is True
    assert label.prediction_id == last_prediction_id()
