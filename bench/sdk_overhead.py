"""Per-call overhead of `@monitor` against a bare call, OpenTelemetry and prometheus_client.

Workloads: (a) trivial function of 3 scalars, (b) 16-feature dict, (c) 32x16 CPU tensor.
Each variant is timed call by call (perf_counter_ns around each call), in interleaved
blocks so that drift hits every variant alike; "added" = variant percentile - bare
percentile. The SDK runs with a discarding transport, then again with the Kafka transport
pointed at an address where nothing listens (broker down).

    .venv/bin/python bench/sdk_overhead.py [--calls 200000] [--rounds 10]

Last line: one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from inferloop.sdk import configure, monitor, shutdown, stats

perf = time.perf_counter_ns


class DiscardTransport:
    """Accepts every batch and keeps nothing: the cost measured is the SDK's own."""

    def send(self, batch: bytes, *, key: str) -> None:
        return None


def workloads() -> dict[str, tuple[Callable[..., Any], tuple[Any, ...]]]:
    import torch

    def scalars(age, amount, score):
        return age + amount * score

    def features(row):
        return row["f0"] + row["f15"]

    def tensor(batch):
        return batch

    row = {f"f{i}": float(i) for i in range(16)}
    return {
        "a_scalars": (scalars, (31, 12.5, 0.3)),
        "b_dict16": (features, (row,)),
        "c_tensor32x16": (tensor, (torch.randn(32, 16),)),
    }


def otel_wrapper() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Discard(SpanExporter):
        def export(self, spans):
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard()))
    tracer = provider.get_tracer("bench")

    def wrap(fn):
        @functools.wraps(fn)
        def traced(*args, **kwargs):
            with tracer.start_as_current_span("predict"):
                return fn(*args, **kwargs)

        return traced

    wrap.provider = provider  # type: ignore[attr-defined]
    return wrap


def prometheus_wrapper() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    from prometheus_client import CollectorRegistry, Counter, Histogram

    registry = CollectorRegistry()
    latency = Histogram("bench_latency_seconds", "latency", registry=registry)
    calls = Counter("bench_calls", "calls", registry=registry)

    def wrap(fn):
        @functools.wraps(fn)
        def measured(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                latency.observe(time.perf_counter() - started)
                calls.inc()

        return measured

    return wrap


def sample(fn: Callable[..., Any], args: tuple[Any, ...], calls: int) -> list[int]:
    out = [0] * calls
    for index in range(calls):
        started = perf()
        fn(*args)
        out[index] = perf() - started
    return out


def percentile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


def measure(
    variants: dict[str, Callable[..., Any]], args: tuple[Any, ...], calls: int, rounds: int
) -> dict[str, dict[str, float]]:
    timings: dict[str, list[int]] = {name: [] for name in variants}
    block = max(1, calls // rounds)
    for fn in variants.values():  # warm up
        sample(fn, args, 2_000)
    for _ in range(rounds):
        for name, fn in variants.items():
            timings[name].extend(sample(fn, args, block))
    bare = timings["bare"]
    bare_median, bare_p99 = statistics.median(bare), percentile(bare, 0.99)
    result = {}
    for name, values in timings.items():
        median, p99 = statistics.median(values), percentile(values, 0.99)
        result[name] = {
            "median_ns": median,
            "p99_ns": p99,
            "added_median_ns": median - bare_median,
            "added_p99_ns": p99 - bare_p99,
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000, help="calls per variant and workload")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved blocks")
    options = parser.parse_args()
    gc.freeze()
    otel, prom = otel_wrapper(), prometheus_wrapper()
    figures: dict[str, Any] = {"calls": options.calls, "python": sys.version.split()[0]}

    configure(transport=DiscardTransport(), register_prometheus=False)
    for name, (fn, args) in workloads().items():
        variants = {
            "bare": fn,
            "inferloop": monitor(model=name, version="1")(fn),
            "prometheus_client": prom(fn),
            "opentelemetry": otel(fn),
        }
        figures[name] = measure(variants, args, options.calls, options.rounds)
    figures["stats_discard"] = stats()
    shutdown(timeout=10)

    # Unconfigured: the no-op path.
    fn, args = workloads()["a_scalars"]
    noop = measure(
        {"bare": fn, "inferloop_unconfigured": monitor(model="x")(fn)},
        args,
        options.calls,
        options.rounds,
    )
    figures["a_scalars"]["inferloop_unconfigured"] = noop["inferloop_unconfigured"]

    # Broker down: Kafka transport at an address where nothing listens.
    configure(transport="kafka", kafka_bootstrap_servers="127.0.0.1:1", register_prometheus=False)
    time.sleep(0.5)
    for name, (fn, args) in workloads().items():
        down = measure(
            {"bare": fn, "inferloop": monitor(model=name, version="1")(fn)},
            args,
            options.calls,
            options.rounds,
        )
        figures[name]["inferloop_kafka_down"] = down["inferloop"]
    figures["stats_kafka_down"] = stats()
    shutdown(timeout=0.5)
    otel.provider.shutdown()  # type: ignore[attr-defined]

    a = figures["a_scalars"]
    ours = a["inferloop"]["added_median_ns"]
    figures["ratios"] = {
        "a_prometheus_over_inferloop": a["prometheus_client"]["added_median_ns"] / max(ours, 1.0),
        "a_opentelemetry_over_inferloop": a["opentelemetry"]["added_median_ns"] / max(ours, 1.0),
    }
    checks = {
        "a_median_le_1500ns": ours <= 1_500,
        "a_below_prometheus": ours < a["prometheus_client"]["added_median_ns"],
        "a_le_otel_over_20": ours <= a["opentelemetry"]["added_median_ns"] / 20,
    }
    for name in ("b_dict16", "c_tensor32x16"):
        checks[f"{name[0]}_median_le_5000ns"] = (
            figures[name]["inferloop"]["added_median_ns"] <= 5_000
        )
    for name in ("a_scalars", "b_dict16", "c_tensor32x16"):
        for variant in ("inferloop", "inferloop_kafka_down"):
            checks[f"{name[0]}_{variant}_p99_le_20000ns"] = (
                figures[name][variant]["added_p99_ns"] <= 20_000
            )
    figures["checks"] = checks
    for name in ("a_scalars", "b_dict16", "c_tensor32x16"):
        row = figures[name]
        print(
            f"{name:15s} "
            + "  ".join(
                f"{variant}: +{values['added_median_ns']:.0f}ns med / +{values['added_p99_ns']:.0f}ns p99"
                for variant, values in row.items()
                if variant != "bare"
            ),
            file=sys.stderr,
        )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
