"""HTTP transport against a real http.server on 127.0.0.1 that records what it receives."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from inferloop.sdk import (
    ENV_API_KEY,
    ENV_ENDPOINT,
    ENV_TRANSPORT,
    HttpTransport,
    RetryLater,
    configure,
    events_of,
    flush,
    monitor,
    stats,
)
from inferloop.sdk._transports import MAX_RETRY_AFTER_S, retry_after_s


class RecordingServer:
    """`protocol`: "HTTP/1.0" answers and closes; "HTTP/1.1" keeps connections open, as
    the embedded server does. `close_silently`: closes after each answer anyway, without
    saying so (a server dropping idle connections)."""

    def __init__(self, protocol: str = "HTTP/1.0", *, close_silently: bool = False) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []  # answers to give, in order; then 200
        self.retry_after: str | None = None  # sent with every answer that is not a 2xx
        # Or an answer computed from each request's body: (status, JSON body or None).
        self.answer: Callable[[bytes], tuple[int, Any]] | None = None
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = protocol

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                recorder.requests.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body,
                        "at": time.monotonic(),
                        "client_port": self.client_address[1],
                    }
                )
                content = b""
                if recorder.answer is not None:
                    status, answer = recorder.answer(body)
                    content = b"" if answer is None else json.dumps(answer).encode()
                else:
                    status = recorder.statuses.pop(0) if recorder.statuses else 200
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if recorder.retry_after is not None and status >= 300:
                    self.send_header("Retry-After", recorder.retry_after)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)
                if close_silently:
                    self.close_connection = True

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[dict[str, Any]]:
        return [event for request in self.requests for event in events_of(request["body"])]

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
    configure(
        transport="http", endpoint=receiver.url + "/", api_key="s3cret", flush_interval_s=0.01
    )
    for i in range(5):
        predict(i)
    assert flush(5)
    request = receiver.requests[0]
    assert request["path"] == "/v1/events"
    assert request["headers"]["Authorization"] == "Bearer s3cret"
    assert request["headers"]["Content-Type"] == "application/json"
    body = json.loads(request["body"])
    assert body["schema_version"] == 2 and body["emitter_id"] == stats()["emitter_id"]
    assert [event["seq"] for event in receiver.events()] == [0, 1, 2, 3, 4]
    assert stats()["sent"] == 5


def test_http_batches_share_one_kept_connection() -> None:
    receiver = RecordingServer("HTTP/1.1")
    try:
        configure(transport="http", endpoint=receiver.url, batch_size=5, flush_interval_s=0.01)
        for i in range(20):
            predict(i)
        assert flush(5)
        assert len(receiver.requests) >= 2
        assert len({request["client_port"] for request in receiver.requests}) == 1
        assert sorted(event["seq"] for event in receiver.events()) == list(range(20))
    finally:
        receiver.close()


def test_http_connection_the_server_dropped_is_opened_again_without_loss() -> None:
    """The server closes each connection after its answer without saying so: each next
    batch finds the kept connection dead, and is posted again on a new one at once."""
    receiver = RecordingServer("HTTP/1.1", close_silently=True)
    try:
        configure(transport="http", endpoint=receiver.url, flush_interval_s=0.01)
        for round_number in range(4):
            predict(round_number)
            assert flush(5)
            time.sleep(0.05)  # the server's close reaches the client before the next batch
        assert [event["seq"] for event in receiver.events()] == [0, 1, 2, 3]
        assert len({request["client_port"] for request in receiver.requests}) == 4
        current = stats()
        assert current["sent"] == 4 and current["retried"] == 0 and current["failed"] == 0
    finally:
        receiver.close()


def test_http_goes_through_the_proxy_the_environment_names(
    receiver: RecordingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `http_proxy` set (and the host not in `no_proxy`), batches go through urllib
    to the proxy, which gets the endpoint's absolute URL: here the receiver plays it."""
    for name in ("HTTP_PROXY", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", receiver.url)
    configure(transport="http", endpoint="http://inferloop.invalid:8123", flush_interval_s=0.01)
    predict(1)
    assert flush(5)
    assert receiver.requests[0]["path"] == "http://inferloop.invalid:8123/v1/events"
    assert [event["seq"] for event in receiver.events()] == [0]


def test_http_configured_from_environment(
    receiver: RecordingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
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


def test_http_503_with_retry_after_waits_that_long_before_the_next_attempt(
    receiver: RecordingServer,
) -> None:
    receiver.statuses = [503]
    receiver.retry_after = "1"
    configure(transport="http", endpoint=receiver.url, flush_interval_s=0.01, retry_backoff_s=0.01)
    predict(1)
    assert flush(10)
    first, second = receiver.requests
    assert second["at"] - first["at"] >= 0.95  # the SDK's own backoff here: 5-10 ms
    assert stats()["retried"] == 1 and stats()["sent"] == 1


def test_http_retry_after_is_read_as_seconds_or_as_a_date(receiver: RecordingServer) -> None:
    transport = HttpTransport(receiver.url)
    receiver.statuses = [429]
    receiver.retry_after = "7"
    with pytest.raises(RetryLater) as later:
        transport.send(b"{}", key="m")
    assert later.value.after_s == 7.0
    receiver.statuses = [503]
    receiver.retry_after = "soon"  # unreadable: an ordinary retry with the SDK's backoff
    with pytest.raises(ConnectionError) as plain:
        transport.send(b"{}", key="m")
    assert not isinstance(plain.value, RetryLater)
    assert retry_after_s("Wed, 02 Dec 2026 10:00:30 GMT", now_s=1796205600.0) == 30.0
    assert retry_after_s("86400") == MAX_RETRY_AFTER_S
    assert retry_after_s("Wed, 02 Dec 2026 09:00:00 GMT", now_s=1796205600.0) == 0.0
    assert retry_after_s(None) is None


def test_http_4xx_is_permanent_failure_counted(receiver: RecordingServer) -> None:
    receiver.statuses = [400]
    configure(transport="http", endpoint=receiver.url, flush_interval_s=0.01, retry_backoff_s=0.01)
    predict(1)
    assert flush(5)
    predict(2)
    assert flush(5)
    current = stats()
    assert current["failed"] == 1 and current["retried"] == 0 and current["sent"] == 1
    (delivered,) = events_of(receiver.requests[1]["body"])
    assert delivered["dropped"] == {"send_failed": 1}


def test_http_connection_refused_is_retried_and_calls_stay_fast() -> None:
    import socket
    import time

    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configure(
        transport="http",
        endpoint=f"http://127.0.0.1:{port}",
        flush_interval_s=0.01,
        retry_backoff_s=0.01,
    )
    started = time.perf_counter()
    for i in range(1_000):
        predict(i)
    assert time.perf_counter() - started < 0.5
    assert not flush(0.3)
    assert stats()["retried"] >= 1 and stats()["sent"] == 0


def refuse(indices: list[int], stored: int) -> dict[str, Any]:
    """The server's answer to a partly invalid batch (server/schemas.py `IngestRejected`)."""
    return {
        "detail": "; ".join(f"events[{i}]: bad" for i in indices),
        "rejected": [{"event_index": i, "reason": f"events[{i}]: bad"} for i in indices],
        "stored": stored,
        "duplicates": 0,
    }


def test_http_422_counts_only_the_events_the_server_rejected(receiver: RecordingServer) -> None:
    stored: list[dict[str, Any]] = []

    def store_all_but_odd_values(body: bytes) -> tuple[int, Any]:
        events = events_of(body)
        bad = [i for i, event in enumerate(events) if event["inputs"]["rows"][0]["value"] in (1, 3)]
        stored.extend(event for i, event in enumerate(events) if i not in bad)
        if not bad:
            return 200, {"stored": len(events), "duplicates": 0}
        return 422, refuse(bad, stored=len(events) - len(bad))

    receiver.answer = store_all_but_odd_values
    configure(transport="http", endpoint=receiver.url, flush_interval_s=0.01, retry_backoff_s=0.01)
    for i in range(6):
        predict(i)
    assert flush(5)
    predict(6)  # one batch after the refusal carries the report of what was lost
    assert flush(5)
    current = stats()
    assert current["failed"] == 2  # the two refused events, not the batch they came in
    assert current["sent"] == 5 and current["retried"] == 0
    assert [event["seq"] for event in stored] == [0, 2, 4, 5, 6]  # nothing sent twice
    reported = sum(event.get("dropped", {}).get("send_failed", 0) for event in stored)
    assert reported == 2


def test_http_422_refusing_the_whole_body_drops_the_whole_batch(receiver: RecordingServer) -> None:
    answers = [(422, refuse([-1], stored=0))]
    receiver.answer = lambda body: answers.pop(0) if answers else (200, None)
    configure(transport="http", endpoint=receiver.url, flush_interval_s=0.01, retry_backoff_s=0.01)
    predict(1)
    assert flush(5)
    predict(2)
    assert flush(5)
    current = stats()
    assert current["failed"] == 1 and current["sent"] == 1 and current["retried"] == 0
    (delivered,) = events_of(receiver.requests[1]["body"])
    assert delivered["dropped"] == {"send_failed": 1}
