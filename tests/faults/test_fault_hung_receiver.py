"""The SDK under a receiver that accepts the connection and never answers.

One test, two phases on the same serving thread: first a receiver that answers 200,
then one that hangs. The serving calls must stay about as fast in the second phase
(compared with a generous factor: the machine is shared), the SDK's queue and buffer
must stay within their bounds, every event must be sent or dropped-and-counted, and
`shutdown(timeout)` must return within its timeout although a send is stuck (a small
margin for the scheduling of a shared machine).
"""

from __future__ import annotations

import contextlib
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from traffic import Traffic
from waiting import wait_for

from inferloop.sdk import _state, configure, flush, monitor, shutdown, stats

pytestmark = pytest.mark.slow

QUEUE_SIZE = 2_000
BUFFER_EVENTS = 5_000
HUNG_S = 12.0  # past the HTTP transport's 10 s timeout: the retry hangs again
SHUTDOWN_TIMEOUT_S = 2.0


@monitor(model="fault-hung", version="1")
def predict(x):
    return x


@contextlib.contextmanager
def answering_receiver() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def hung_receiver() -> Iterator[tuple[str, list[socket.socket]]]:
    """Accepts every connection, reads nothing, answers nothing, closes nothing."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    closing = threading.Event()

    def accept() -> None:
        while not closing.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            accepted.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted
    finally:
        closing.set()
        listener.close()
        for connection in accepted:
            connection.close()
        thread.join(10)


def _phase(endpoint: str, seconds: float) -> tuple[list[float], dict]:
    """Serve for `seconds` with the SDK sending to `endpoint`: call durations and the peaks."""
    configure(
        transport="http",
        endpoint=endpoint,
        queue_size=QUEUE_SIZE,
        buffer_events=BUFFER_EVENTS,
        batch_size=500,
    )
    peaks = {"queue_depth": 0, "buffered": 0}
    with Traffic(predict) as traffic:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            current = stats()
            for name in peaks:
                peaks[name] = max(peaks[name], current[name])
            time.sleep(0.05)
        traffic.stop()
    peaks["emitted"] = traffic.emitted
    return traffic.durations_s, peaks


def _p(durations: list[float], q: int) -> float:
    return statistics.quantiles(durations, n=100)[q - 1]


def test_hung_receiver_keeps_calls_fast_buffers_bounded_and_shutdown_on_time():
    with answering_receiver() as url:
        up, up_peaks = _phase(url, 5.0)
        assert flush(30)
        assert stats()["sent"] == up_peaks["emitted"]
        shutdown(timeout=5.0)

    with hung_receiver() as (url, accepted):
        hung, hung_peaks = _phase(url, HUNG_S)
        emitter = _state.emitter  # its counters stay readable after shutdown; stats() do not
        wait_for(lambda: accepted, 30, "the SDK to connect to the hung receiver")
        started = time.monotonic()
        delivered = shutdown(timeout=SHUTDOWN_TIMEOUT_S)
        shutdown_s = time.monotonic() - started
    final = emitter.stats()
    counted = sum(final["dropped"].values())

    up_p50, up_p99 = _p(up, 50), _p(up, 99)
    hung_p50, hung_p99 = _p(hung, 50), _p(hung, 99)
    print(
        f"\nfault hung-receiver: up p50={up_p50 * 1e6:.1f}us p99={up_p99 * 1e6:.1f}us "
        f"({len(up)} calls); hung p50={hung_p50 * 1e6:.1f}us p99={hung_p99 * 1e6:.1f}us "
        f"({len(hung)} calls); emitted={hung_peaks['emitted']} sent={final['sent']} "
        f"dropped_and_counted={final['dropped']} peak queue={hung_peaks['queue_depth']}/"
        f"{QUEUE_SIZE} buffered={hung_peaks['buffered']}/{BUFFER_EVENTS} "
        f"connections={len(accepted)} shutdown={shutdown_s:.2f}s (timeout "
        f"{SHUTDOWN_TIMEOUT_S:.0f}s)"
    )
    assert not delivered
    # The worker's join gets one second beyond the timeout (`Emitter.shutdown`).
    assert shutdown_s <= SHUTDOWN_TIMEOUT_S + 0.3
    assert hung_p50 <= 3 * up_p50 + 20e-6
    assert hung_p99 <= 10 * up_p99 + 1e-3
    assert hung_peaks["queue_depth"] <= QUEUE_SIZE and hung_peaks["buffered"] <= BUFFER_EVENTS
    assert final["sent"] == 0
    assert final["sent"] + counted == hung_peaks["emitted"]  # none unaccounted for
