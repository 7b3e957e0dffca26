"""A real loopback HTTP receiver for request tests: records every POST, answers as told."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Sink:
    url: str = ""
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    """Answers to give, in order; 200 once they run out."""


@contextlib.contextmanager
def serving_sink(statuses: list[int] | None = None) -> Iterator[Sink]:
    sink = Sink(statuses=list(statuses or []))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with lock:
                sink.received.append(
                    Received({k.lower(): v for k, v in self.headers.items()}, body)
                )
                status = sink.statuses.pop(0) if sink.statuses else 200
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="feedback-sink", daemon=True)
    thread.start()
    sink.url = f"http://127.0.0.1:{server.server_address[1]}/requests"
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
