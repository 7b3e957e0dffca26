"""The whole cost of monitoring a call, worker included, against prometheus_client and OTel.

All-in CPU per call: process CPU time (every thread: the SDK's worker, OpenTelemetry's
export thread) for N monitored calls plus the flush that delivers them, minus the CPU of
N bare calls, divided by N. Workloads: (a) 3 scalars, (b) a 16-feature dict. Baselines,
in the same process: prometheus_client Histogram + Counter (plus one scrape), and an
OpenTelemetry span with BatchSpanProcessor (plus force_flush) when opentelemetry-sdk is
installed. Each figure is the median over interleaved rounds; each ratio is the median of
the ratios within a round (the variants run back to back), which cancels the machine's
slower and faster spells better than a ratio of two medians. The SDK also runs with its C
modules turned off ("inferloop_python_only": the Python wrapper and column passes that
stand in for them where no compiler is found).

The SDK delivers over HTTP to a receiver in another process (`--transport http`, the
default) or to a transport that discards (`--transport discard`). It runs twice, each
time in a fresh child process: with orjson, and with the standard library's `json` only
(orjson and msgspec blocked), each child measuring its own prometheus_client baseline.

Latency: a ~20 µs model call (a busy loop) served at 5,000 calls/s (paced with sleeps,
as a server waiting on its socket), bare and monitored in six alternating blocks each;
"added" p99.9 and max are the monitored calls' minus the bare calls', both for the call
itself and from the call's scheduled instant to its end ("response": that one also holds
the wait for the GIL on waking). On a shared machine the bare calls' own tail (printed
too) shows how far these can be trusted.

    flock /tmp/bench.lock .venv/bin/python bench/sdk_all_in.py [--calls 30000] [--rounds 11] [--transport http|discard]

Last line: one JSON object of the figures, ratios and checks.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WORKLOADS = ("a_scalars", "b_dict16")
perf = time.perf_counter_ns
cpu = time.process_time_ns


class DiscardTransport:
    """Accepts every batch and keeps nothing."""

    def send(self, batch: bytes, *, key: str) -> None:
        return None


class _Receiver(BaseHTTPRequestHandler):
    # As the embedded server (uvicorn) answers: connections kept alive, no Nagle delay.
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        return None


def serve_receiver() -> None:
    """Child mode: an HTTP receiver that accepts every batch (prints its port)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    print(server.server_address[1], flush=True)
    server.serve_forever()


def workload(name: str) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    if name == "a_scalars":

        def scalars(age, amount, score):
            return age + amount * score

        return scalars, (31, 12.5, 0.3)

    def features(row):
        return row["f0"] + row["f15"]

    return features, ({f"f{i}": float(i) for i in range(16)},)


def prometheus_variant() -> tuple[Callable[..., Any], Callable[[], None]]:
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

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

    return wrap, lambda: generate_latest(registry)  # the scrape that delivers


def otel_variant() -> tuple[Callable[..., Any], Callable[[], None], Callable[[], None]] | None:
    try:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )
    except ImportError:
        return None

    class Discard(SpanExporter):
        def export(self, spans):
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=1 << 20))
    tracer = provider.get_tracer("bench")

    def wrap(fn):
        @functools.wraps(fn)
        def traced(*args, **kwargs):
            with tracer.start_as_current_span("predict"):
                return fn(*args, **kwargs)

        return traced

    return wrap, provider.force_flush, provider.shutdown


@contextlib.contextmanager
def native_modules(on: bool) -> Iterator[None]:
    """The SDK with its C modules (`_hotpath`, `_transpose`) as built, or with the Python
    code they stand in for: the same run then shows what the C saves."""
    from inferloop.sdk import _columns, _monitor

    saved = _monitor.use_hotpath, _columns.use_native
    _monitor.use_hotpath = on and _monitor._hotpath is not None
    _columns.use_native = on and _columns.dict_columns is not None
    try:
        yield
    finally:
        _monitor.use_hotpath, _columns.use_native = saved


def run_cpu(fn: Callable[..., Any], args: tuple[Any, ...], calls: int, deliver: Callable) -> int:
    """CPU of every thread for `calls` calls and the delivery that follows them. Each run
    starts from a collected heap, so that no variant pays for the garbage of the one before."""
    gc.collect()
    started = cpu()
    for _ in range(calls):
        fn(*args)
    deliver()
    return cpu() - started


def all_in(options: argparse.Namespace, transport_factory: Callable[[], Any]) -> dict[str, Any]:
    """Median all-in CPU ns per call, per workload and variant."""
    from inferloop.sdk import configure, flush, monitor, shutdown, stats

    wrap_prometheus, scrape = prometheus_variant()
    otel = otel_variant() if options.child == "orjson" else None
    calls = options.calls
    figures: dict[str, Any] = {}
    for name in WORKLOADS:
        fn, args = workload(name)
        samples: dict[str, list[float]] = {
            "inferloop": [],
            "inferloop_python_only": [],
            "prometheus_client": [],
        }
        if otel is not None:
            samples["opentelemetry"] = []
        prometheus_fn = wrap_prometheus(fn)
        otel_fn = otel[0](fn) if otel is not None else None
        for _ in range(options.rounds):
            bare = run_cpu(fn, args, calls, lambda: None)
            for variant, native in (("inferloop", True), ("inferloop_python_only", False)):
                with native_modules(native):
                    configure(
                        transport=transport_factory(),
                        queue_size=calls + 10,
                        register_prometheus=False,
                    )
                    monitored = monitor(model=name, version="1")(fn)
                    monitored(*args)
                    assert flush(10)
                    ours = run_cpu(monitored, args, calls, lambda: flush(60))
                    current = stats()
                    shutdown(10)
                assert current["dropped"] == {} and current["failed"] == 0, current
                samples[variant].append((ours - bare) / calls)
            theirs = run_cpu(prometheus_fn, args, calls, scrape)
            samples["prometheus_client"].append((theirs - bare) / calls)
            if otel_fn is not None:
                spans = run_cpu(otel_fn, args, calls, otel[1])
                samples["opentelemetry"].append((spans - bare) / calls)
        figures[name] = {variant: statistics.median(v) for variant, v in samples.items()}
        # Each round measures every variant back to back: the ratio within a round cancels
        # the machine's slower and faster spells (on a shared VM, up to 1.5x apart).
        ours_samples = samples["inferloop"]
        for variant, theirs_samples in samples.items():
            if variant != "inferloop":
                figures[name][f"per_round_over_{variant}"] = statistics.median(
                    a / b for a, b in zip(ours_samples, theirs_samples, strict=True)
                )
    if otel is not None:
        otel[2]()
    return figures


def busy_call(duration_ns: int = 20_000) -> Callable[[float, float, float], float]:
    def model(age: float, amount: float, score: float) -> float:
        deadline = perf() + duration_ns
        while perf() < deadline:
            pass
        return age + amount * score

    return model


def paced(fn: Callable[..., Any], rate: int, seconds: float) -> tuple[list[int], list[int]]:
    """`fn` called `rate` times a second, sleeping in between: per call, the time the call
    took, and the time from its scheduled instant to its end. The second also holds the
    wait for the GIL on waking (a serving thread pays it between its socket and its
    handler) and the sleep's own overshoot, the same for bare and monitored calls."""
    period = 1_000_000_000 // rate
    count = int(rate * seconds)
    service = [0] * count
    response = [0] * count
    start = perf()
    for index in range(count):
        due = start + index * period
        delay = due - perf()
        if delay > 0:
            time.sleep(delay / 1e9)
        began = perf()
        fn(31, 12.5, 0.3)
        ended = perf()
        service[index] = ended - began
        response[index] = ended - due
    return service, response


def quantile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


def latency(options: argparse.Namespace, transport_factory: Callable[[], Any]) -> dict[str, Any]:
    from inferloop.sdk import configure, monitor, shutdown, stats

    model = busy_call()
    bare: tuple[list[int], list[int]] = ([], [])
    ours: tuple[list[int], list[int]] = ([], [])
    # Short alternating blocks, so that the machine's own hiccups fall on both alike.
    blocks = 6
    for _ in range(blocks):
        seconds = options.paced_s / (2 * blocks)
        for into, measured in zip(bare, paced(model, 5_000, seconds), strict=True):
            into.extend(measured)
        configure(transport=transport_factory(), register_prometheus=False)
        monitored = monitor(model="paced", version="1")(model)
        for into, measured in zip(ours, paced(monitored, 5_000, seconds), strict=True):
            into.extend(measured)
        current = stats()
        shutdown(10)
        assert current["dropped"] == {}, current
    figures = {}
    for label, q in (("p50", 0.5), ("p99", 0.99), ("p999", 0.999), ("max", 1.0)):
        for kind, index in (("", 0), ("response_", 1)):
            figures[f"bare_{kind}{label}_ns"] = quantile(bare[index], q)
            figures[f"added_{kind}{label}_ns"] = quantile(ours[index], q) - quantile(bare[index], q)
    figures["calls"] = len(ours[0])
    return figures


def child(options: argparse.Namespace) -> None:
    """One measurement process: `--child orjson` or `--child json` (fast encoders blocked)."""
    if options.child == "json":
        sys.modules["orjson"] = None  # type: ignore[assignment]
        sys.modules["msgspec"] = None  # type: ignore[assignment]
    from inferloop.sdk import HttpTransport
    from inferloop.sdk._serialize import ENCODER_NAME

    gc.freeze()
    receiver = None
    if options.transport == "http":
        receiver = subprocess.Popen(
            [sys.executable, __file__, "--receiver"], stdout=subprocess.PIPE, text=True
        )
        port = int(receiver.stdout.readline())  # type: ignore[union-attr]
        endpoint = f"http://127.0.0.1:{port}"

        def factory() -> Any:
            return HttpTransport(endpoint)
    else:
        factory = DiscardTransport
    try:
        figures: dict[str, Any] = {
            "encoder": ENCODER_NAME,
            "all_in_cpu_ns": all_in(options, factory),
        }
        if options.child == "orjson":
            figures["paced_5000_per_s"] = latency(options, factory)
    finally:
        if receiver is not None:
            receiver.kill()
            receiver.wait()
    print(json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30_000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=11, help="interleaved rounds")
    parser.add_argument("--paced-s", type=float, default=6.0, help="seconds of paced calls")
    parser.add_argument("--transport", choices=("http", "discard"), default="http")
    parser.add_argument("--child", choices=("orjson", "json"), help=argparse.SUPPRESS)
    parser.add_argument("--receiver", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.receiver:
        serve_receiver()
        return
    if options.child:
        child(options)
        return
    runs = {}
    for mode in ("orjson", "json"):
        command = [
            sys.executable,
            __file__,
            "--child",
            mode,
            "--calls",
            str(options.calls),
            "--rounds",
            str(options.rounds),
            "--paced-s",
            str(options.paced_s),
            "--transport",
            options.transport,
        ]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        runs[mode] = json.loads(output.strip().splitlines()[-1])
    fast, slow = runs["orjson"], runs["json"]
    ratios = {}
    for name in WORKLOADS:
        row = fast["all_in_cpu_ns"][name]
        ratios[f"{name}_over_prometheus"] = row["per_round_over_prometheus_client"]
        ratios[f"{name}_over_python_only"] = row["per_round_over_inferloop_python_only"]
        if "opentelemetry" in row:
            ratios[f"{name}_over_opentelemetry"] = row["per_round_over_opentelemetry"]
        ratios[f"{name}_json_over_prometheus"] = slow["all_in_cpu_ns"][name][
            "per_round_over_prometheus_client"
        ]
    paced_figures = fast["paced_5000_per_s"]
    checks = {
        "a_le_1x_prometheus": ratios["a_scalars_over_prometheus"] <= 1.0,
        "b_le_1_5x_prometheus": ratios["b_dict16_over_prometheus"] <= 1.5,
        "a_json_le_3x_prometheus": ratios["a_scalars_json_over_prometheus"] <= 3.0,
        "b_json_le_3x_prometheus": ratios["b_dict16_json_over_prometheus"] <= 3.0,
        "p999_added_le_20us": paced_figures["added_p999_ns"] <= 20_000,
        "max_added_le_1ms": paced_figures["added_max_ns"] <= 1_000_000,
    }
    if "a_scalars_over_opentelemetry" in ratios:
        checks["a_le_otel_over_20"] = ratios["a_scalars_over_opentelemetry"] <= 1 / 20
        checks["b_le_otel_over_20"] = ratios["b_dict16_over_opentelemetry"] <= 1 / 20
    figures = {
        "calls": options.calls,
        "rounds": options.rounds,
        "transport": options.transport,
        "python": sys.version.split()[0],
        "orjson": fast,
        "json": slow,
        "ratios": ratios,
        "checks": checks,
    }
    for name in WORKLOADS:
        print(
            f"{name}: "
            + "  ".join(
                f"{k}={v:.0f}ns"
                for k, v in fast["all_in_cpu_ns"][name].items()
                if not k.startswith("per_round")
            )
            + f"  | json: inferloop={slow['all_in_cpu_ns'][name]['inferloop']:.0f}ns",
            file=sys.stderr,
        )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
