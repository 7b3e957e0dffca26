"""Transports: where serialised batches go. One method, called on the worker thread only.

`send(batch, *, key)` returns when the batch is delivered and raises when it is not:
`PermanentTransportError` for a batch that will never be accepted (it is counted as failed),
`PartiallyRejected` when the receiver stored all but some of its events (only those are
counted), `RetryLater` when the receiver said when to come back (HTTP `Retry-After`),
anything else for a failure worth retrying with backoff.

Two optional capabilities, each a Protocol that the emitter checks once, when it creates
the transport: `PipeliningTransport` (several batches awaiting acknowledgement at once) and
`Closeable` (resources released when the emitter stops).
"""

from __future__ import annotations

import email.utils
import http.client
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from typing import IO, Any, Protocol, runtime_checkable

from ._columns import expand
from ._serialize import loads


@runtime_checkable
class Transport(Protocol):
    def send(self, batch: bytes, *, key: str) -> None:
        """Deliver one batch (JSON bytes of the envelope); raise if it was not delivered."""


class PendingDelivery(Protocol):
    """The acknowledgement of one submitted batch, polled by the worker."""

    @property
    def done(self) -> bool:
        """True once the receiver answered (or the attempt failed)."""

    @property
    def error(self) -> BaseException | None:
        """None when delivered; else what `send` would have raised. Read once `done`."""


@runtime_checkable
class PipeliningTransport(Transport, Protocol):
    """A transport that accepts a batch without waiting for its acknowledgement (Kafka)."""

    def submit(
        self, batch: bytes, *, key: str, on_done: Callable[[], None] | None = None
    ) -> PendingDelivery:
        """Queue one batch for delivery; `on_done()` is called from any thread once it is
        acknowledged or failed. Raise if it cannot even be queued."""


@runtime_checkable
class Closeable(Protocol):
    def close(self) -> None:
        """Release connections and files; called once, on the worker, when it stops."""


class PermanentTransportError(Exception):
    """The receiver refused the batch for good (e.g. HTTP 4xx): retrying cannot help."""


class RetryLater(ConnectionError):
    """The receiver is unavailable and said how long to wait (`after_s`): the next attempt
    waits at least that long, however short the SDK's own backoff would have been."""

    def __init__(self, message: str, after_s: float) -> None:
        super().__init__(message)
        self.after_s = after_s


MAX_RETRY_AFTER_S = 60.0
"""A longer `Retry-After` is read as this: past it the SDK asks again (its buffer is bounded)."""


def retry_after_s(value: str | None, *, now_s: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delay-seconds or an HTTP date), clamped
    to [0, MAX_RETRY_AFTER_S]; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT
            return None
        seconds = when.timestamp() - (time.time() if now_s is None else now_s)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


class PartiallyRejected(PermanentTransportError):
    """The receiver stored the batch except the events at `indices` (positions in `events`),
    which it refused for good: only those are lost, the rest must not be sent again."""

    def __init__(self, indices: Iterable[int], detail: str = "") -> None:
        self.indices = frozenset(indices)
        super().__init__(detail or f"{len(self.indices)} events refused")

    @property
    def rejected(self) -> int:
        """How many events were refused."""
        return len(self.indices)


def events_of(batch: bytes | dict[str, Any]) -> list[dict[str, Any]]:
    """The events of one batch (JSON bytes or decoded), in the v1 layout whatever its
    contract version: a columnar (v2) batch is expanded as the collector reads it."""
    decoded = loads(batch) if isinstance(batch, (bytes, bytearray, str)) else batch
    return expand(decoded)["events"]


class MemoryTransport:
    """Keeps batches in memory so that users' tests can read their events back.

    `send` only keeps the bytes (the worker does no decoding); they are decoded, with
    orjson or msgspec when installed, when the test reads `batches` or `events`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.raw: list[bytes] = []
        """Each batch exactly as sent."""
        self.keys: list[str] = []
        self._decoded: list[dict[str, Any]] = []

    def send(self, batch: bytes, *, key: str) -> None:
        with self._lock:
            self.raw.append(batch)
            self.keys.append(key)

    @property
    def batches(self) -> list[dict[str, Any]]:
        """Every batch received so far, in the v1 layout (v2 columns expanded to events)."""
        with self._lock:
            decoded = self._decoded
            for raw in self.raw[len(decoded) :]:
                decoded.append(expand(loads(raw)))
            return list(decoded)

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event received so far, in delivery order."""
        return [event for batch in self.batches for event in batch["events"]]

    def clear(self) -> None:
        with self._lock:
            self.raw.clear()
            self.keys.clear()
            self._decoded.clear()


class FileTransport:
    """Appends each batch as one JSON line to a file, or to stdout with path "-" (debugging)."""

    def __init__(self, path: str = "-") -> None:
        self._path = path
        self._lock = threading.Lock()
        self._file: IO[bytes] | None = None

    def send(self, batch: bytes, *, key: str) -> None:
        with self._lock:
            if self._path == "-":
                stream = sys.stdout.buffer
            else:
                if self._file is None:
                    self._file = open(self._path, "ab")  # noqa: SIM115 - kept open across batches
                stream = self._file
            stream.write(batch + b"\n")
            stream.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


class HttpTransport:
    """POSTs each batch to `{endpoint}/v1/events`, over one connection kept open between
    batches.

    2xx: delivered. 5xx, 408, 429 and connection errors: raised for retry (`RetryLater` when a
    429 or 503 carries `Retry-After`, which the retry then honours). Other 4xx:
    permanent failure, of the whole batch unless a 422 names the events it refused (the
    server stores the valid events of a partly invalid batch): then `PartiallyRejected`.

    Why a kept connection: a new TCP connection per batch cost ~115 µs of the worker's CPU
    here (connect and close on loopback), one kept open ~10, and with urllib's own work
    that was ~0.08 µs of every event of a 2,000-event batch. A connection the server closed
    while idle is found when it fails and the batch is posted again on a fresh one (a
    batch is idempotent: the store keeps an event id once). When a proxy is configured for
    the endpoint (`HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY`), each batch goes through urllib,
    which honours it.
    """

    def __init__(
        self, endpoint: str, *, api_key: str | None = None, timeout_s: float = 10.0
    ) -> None:
        self.url = endpoint.rstrip("/") + "/v1/events"
        self._headers = {"Content-Type": "application/json", "User-Agent": "inferloop-sdk"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._timeout_s = timeout_s
        parts = urllib.parse.urlsplit(self.url)
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname or "", parts.port
        self._target = parts.path + (f"?{parts.query}" if parts.query else "")
        proxies = urllib.request.getproxies()
        self._via_proxy = parts.scheme in proxies and not urllib.request.proxy_bypass(parts.netloc)
        # Its own opener: urlopen's shared one keeps the proxies of its first call.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler(proxies))
        self._connection: http.client.HTTPConnection | None = None

    def send(self, batch: bytes, *, key: str) -> None:
        status, headers, answer = (
            self._post_via_proxy(batch) if self._via_proxy else self._post(batch)
        )
        if 200 <= status < 300:
            return
        message = f"HTTP {status} from {self.url}"
        if 400 <= status < 500 and status not in (408, 429):
            refused = _refused_indices(answer) if status == 422 else None
            if refused:
                raise PartiallyRejected(refused, message)
            raise PermanentTransportError(message)
        after_s = retry_after_s(headers.get("Retry-After"))
        if after_s is not None and status in (429, 503):
            raise RetryLater(f"{message}, retry after {after_s:g} s", after_s)
        raise ConnectionError(message)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _connect(self) -> http.client.HTTPConnection:
        kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        connection = kind(self._host, self._port, timeout=self._timeout_s)
        connection.connect()
        # The request's headers and body may leave in two writes: without this, the second
        # could wait for the server's delayed acknowledgement of the first (~40 ms).
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection

    def _post(self, batch: bytes) -> tuple[int, Any, bytes]:
        """(status, headers, body) of one POST. A kept connection that fails before its
        answer (the server closed it while idle) is replaced and the batch posted once more."""
        reused = self._connection is not None
        try:
            return self._exchange(batch)
        except TimeoutError:
            raise  # a slow server: retried with backoff, not at once
        except (http.client.HTTPException, OSError):
            if not reused:
                raise
        return self._exchange(batch)

    def _exchange(self, batch: bytes) -> tuple[int, Any, bytes]:
        """One request and its answer on the kept connection (opened if there is none); a
        connection that failed, or that the server will close, is closed here."""
        if self._connection is None:
            self._connection = self._connect()
        try:
            self._connection.request("POST", self._target, body=batch, headers=self._headers)
            response = self._connection.getresponse()
            answer = response.read()
        except BaseException:
            self.close()  # half a request or half an answer: the connection is unusable
            raise
        if response.will_close:
            self.close()
        return response.status, response.headers, answer

    def _post_via_proxy(self, batch: bytes) -> tuple[int, Any, bytes]:
        request = urllib.request.Request(self.url, data=batch, headers=self._headers, method="POST")
        try:
            with self._opener.open(request, timeout=self._timeout_s) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as exc:
            try:
                return exc.code, exc.headers or {}, exc.read()
            except OSError:
                return exc.code, exc.headers or {}, b""
            finally:
                exc.close()


def _refused_indices(answer: bytes) -> list[int] | None:
    """The events a 422 body names (`{"rejected": [{"event_index": i, ...}], ...}`), or None
    when it names none or refuses the whole body (`event_index` -1)."""
    try:
        rejected = loads(answer)["rejected"]
        indices = [int(entry["event_index"]) for entry in rejected]
    except (ValueError, TypeError, KeyError):
        return None
    if not indices or min(indices) < 0:
        return None
    return indices
