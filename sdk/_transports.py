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
import sys
import threading
import time
import urllib.error
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
    """POSTs each batch to `{endpoint}/v1/events` with the standard library's urllib.

    2xx: delivered. 5xx, 408, 429 and connection errors: raised for retry (`RetryLater` when a
    429 or 503 carries `Retry-After`, which the retry then honours). Other 4xx:
    permanent failure, of the whole batch unless a 422 names the events it refused (the
    server stores the valid events of a partly invalid batch): then `PartiallyRejected`.
    """

    def __init__(
        self, endpoint: str, *, api_key: str | None = None, timeout_s: float = 10.0
    ) -> None:
        self.url = endpoint.rstrip("/") + "/v1/events"
        self._headers = {"Content-Type": "application/json", "User-Agent": "inferloop-sdk"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._timeout_s = timeout_s

    def send(self, batch: bytes, *, key: str) -> None:
        request = urllib.request.Request(self.url, data=batch, headers=self._headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            try:
                answer = exc.read() if exc.code == 422 else b""
            except OSError:
                answer = b""
            finally:
                exc.close()
            if 400 <= exc.code < 500 and exc.code not in (408, 429):
                refused = _refused_indices(answer)
                message = f"HTTP {exc.code} from {self.url}"
                if refused:
                    raise PartiallyRejected(refused, message) from None
                raise PermanentTransportError(message) from None
            message = f"HTTP {exc.code} from {self.url}"
            after_s = retry_after_s(exc.headers.get("Retry-After")) if exc.headers else None
            if after_s is not None and exc.code in (429, 503):
                raise RetryLater(f"{message}, retry after {after_s:g} s", after_s) from None
            raise ConnectionError(message) from None


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
