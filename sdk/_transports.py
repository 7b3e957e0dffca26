"""Transports: where serialised batches go. One method, called on the worker thread only.

`send(batch, *, key)` returns when the batch is delivered and raises when it is not:
`PermanentTransportError` for a batch that will never be accepted (it is counted as failed),
anything else for a failure worth retrying with backoff.
"""

from __future__ import annotations

import sys
import threading
import urllib.error
import urllib.request
from typing import IO, Any, Protocol, runtime_checkable

from ._serialize import loads


@runtime_checkable
class Transport(Protocol):
    def send(self, batch: bytes, *, key: str) -> None:
        """Deliver one batch (JSON bytes of the envelope); raise if it was not delivered."""


class PermanentTransportError(Exception):
    """The receiver refused the batch for good (e.g. HTTP 4xx): retrying cannot help."""


class MemoryTransport:
    """Keeps decoded batches in memory so that users' tests can read their events back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.batches: list[dict[str, Any]] = []
        self.keys: list[str] = []

    def send(self, batch: bytes, *, key: str) -> None:
        decoded = loads(batch)
        with self._lock:
            self.batches.append(decoded)
            self.keys.append(key)

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event received so far, in delivery order."""
        with self._lock:
            return [event for batch in self.batches for event in batch["events"]]

    def clear(self) -> None:
        with self._lock:
            self.batches.clear()
            self.keys.clear()


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

    2xx: delivered. 5xx and connection errors: raised for retry. 4xx: permanent failure.
    """

    def __init__(self, endpoint: str, *, api_key: str | None = None, timeout_s: float = 10.0) -> None:
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
            exc.close()
            if 400 <= exc.code < 500 and exc.code not in (408, 429):
                raise PermanentTransportError(f"HTTP {exc.code} from {self.url}") from None
            raise ConnectionError(f"HTTP {exc.code} from {self.url}") from None
