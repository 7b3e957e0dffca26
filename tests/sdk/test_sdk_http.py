"""HTTP transport against a real http.server on 127.0.0.1 that records what it receives."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from inferloop.sdk import ENV_API_KEY, ENV_ENDPOINT, ENV_TRANSPORT, configure, flush, monitor, stats


class RecordingServer:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []  # answers to give, in order; then 200
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                recorder.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status = recorder.statuses.pop(0) if recorder.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[dict[str, Any]]:
        return [event for request in self.requests for event in json.loads(request["body"])["events"]]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[RecordingServer]:
    server = RecordingServer()
    yield server
    server.close()


@monitor(model="fraud", version="2")
def predict(x):
    return x


def test_http_batches_posted_with_bearer_key_and_json(receiver: RecordingServer) -> None:
    configure(transport="http", endpoint=receiver.url + "/", api_key="s3cret", flush_interval_s=0.01)
    for i in range(5):
        predict(i)
    assert flush(5)
    request = receiver.requests[0]
    assert request["path"] == "/v1/events"
    assert request["headers"]["Authorization"] == "Bearer s3cret"
    assert request["headers"]["Content-Type"] == "application/json"
    body = json.loads(request["body"])
    assert body["schema_version"] == 1 and body["emitter_id"] == stats()["emitter_id"]
    assert [event["seq"] for event in receiver.events()] == [0, 1, 2, 3, 4]
    assert stats()["sent"] == 5


def test_http_configured_from_environment(receiver: RecordingServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_TRANSPORT, "http")
    monkeypatch.setenv(ENV_ENDPOINT, receiver.url)
    configure(flush_interval_s=0.01)
    predict(1)
    assert flush(5)
    assert "Authorization" not in receiver.requests[0]["headers"]  # no key, no header
    monkeypatch.setenv(ENV_API_KEY, "from-env")
    configure(flush_interval_s=0.01)
    predict(2)
    assert flush(5)
    assert receiver.requests[-1]["headers"]["Authorization"] == "Bearer from-env"


def test_http_5xx_retried_until_delivered(receiver: RecordingServer) -> None:
    receiver.statuses = [503, 503]
    configure(transport="http", endpoint=receiver.url, flush_interval_s=0.01, retry_backoff_s=0.01)
    predict(1)
    assert flush(5)
    assert len(receiver.requests) == 3
    assert receiver.requests[0]["body"] == receiver.requests[2]["body"]  # same batch resent
    current = stats()
    assert current["retried"] == 2 and current["sent"] == 1 and current["failed"] == 0


def test_http_4xx_is_permanent_failure_counted(receiver: RecordingServer) -> None:
    receiver.statuses = [400]
    configure(transport="http", endpoint=receiver.url, flush_interval_s=0.01, retry_backoff_s=0.01)
    predict(1)
    assert flush(5)
    predict(2)
    assert flush(5)
    current = stats()
    assert current["failed"] == 1 and current["retried"] == 0 and current["sent"] == 1
    (delivered,) = json.loads(receiver.requests[1]["body"])["events"]
    assert delivered["dropped"] == {"send_failed": 1}


def test_http_connection_refused_is_retried_and_calls_stay_fast() -> None:
    import socket
    import time

    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configure(transport="http", endpoint=f"http://127.0.0.1:{port}", flush_interval_s=0.01,
              retry_backoff_s=0.01)
    started = time.perf_counter()
    for i in range(1_000):
        predict(i)
    assert time.perf_counter() - started < 0.5
    assert not flush(0.3)
    assert stats()["retried"] >= 1 and stats()["sent"] == 0
