"""CUDA path: device time from CUDA events, resolved by the worker, never synchronised on the
serving thread. Runs where a CUDA device is present; skips with the reason elsewhere."""

from __future__ import annotations

import time

import pytest

from inferloop.sdk import MemoryTransport, configure, flush, monitor

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine"),
]

SPIN_CYCLES = 200_000_000  # torch.cuda._sleep: a kernel that spins; ~0.1 s on current GPUs


def test_device_time_measured_with_cuda_events_without_syncing_caller() -> None:
    torch.cuda.init()
    transport = configure(transport="memory", flush_interval_s=0.01)
    assert isinstance(transport, MemoryTransport)

    @monitor(model="gpu-model", cuda=True)
    def predict(batch):
        torch.cuda._sleep(SPIN_CYCLES)  # queued on the current stream; returns at once
        return batch * 2

    batch = torch.ones(8, 4, device="cuda")
    predict(batch)  # warm-up (kernel load, allocator)
    torch.cuda.synchronize()
    started = time.perf_counter_ns()
    predict(batch)
    call_ns = time.perf_counter_ns() - started
    assert flush(30)
    event = transport.events[-1]
    assert event["device"].startswith("cuda")
    assert event["device_time_ns"] is not None
    # The kernel ran for longer than the call took: the caller did not wait for the device.
    assert event["device_time_ns"] > 5 * call_ns, (event["device_time_ns"], call_ns)
    assert event["outputs"]["rows"][0] == {"f0": 2.0, "f1": 2.0, "f2": 2.0, "f3": 2.0}


def test_cuda_tensors_summarised_on_worker_and_auto_timing() -> None:
    torch.cuda.init()
    _ = torch.zeros(1, device="cuda")  # CUDA initialised before configure: timing is automatic
    transport = configure(transport="memory", flush_interval_s=0.01)

    @monitor(model="gpu-model")
    def predict(batch):
        return batch.sum(dim=1)

    predict(torch.randn(64, 16, device="cuda"))
    assert flush(30)
    (event,) = transport.events
    assert event["device"] == "cuda:0"
    assert event["batch_size"] == 64
    assert event["inputs"]["summary"]["shape"] == [64, 16]
    assert event["device_time_ns"] is not None and event["device_time_ns"] >= 0
