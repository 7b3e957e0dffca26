"""Kafka transport (kafka-python), created and used on the worker thread only.

kafka-python blocks where a serving thread must not: `KafkaProducer()` bootstraps (30 s by
default with no broker) and `send()` waits up to `max_block_ms` (60 s) for metadata. Here
both run on the SDK's worker with short bounds, and failures are retried by the emitter,
whose bounded buffer absorbs an outage.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

from ._transports import PermanentTransportError


def choose_compression(requested: str) -> str | None:
    """The codec to use. "auto" prefers cheap codecs when their libraries are installed.

    kafka-python computes each record batch's CRC32C over the compressed bytes, in pure
    Python unless the `crc32c` package is installed (~4 MB/s). Without it, gzip (kafka-python
    uses level 9) is the faster choice because it shrinks what the CRC reads ~8x.
    """
    if requested != "auto":
        return None if requested in ("none", "") else requested
    for codec, module in (("lz4", "lz4"), ("zstd", "zstandard"), ("snappy", "snappy")):
        if importlib.util.find_spec(module) is not None:
            return codec
    if importlib.util.find_spec("crc32c") is not None:
        return None
    return "gzip"


_PERMANENT_ERRORS = frozenset(
    {
        "MessageSizeTooLargeError",
        "RecordTooLargeError",
        "InvalidRecordError",
        "TopicAuthorizationFailedError",
        "ClusterAuthorizationFailedError",
    }
)


class Delivery:
    """The pending ack of one batch (a `PendingDelivery`): `done`, then `error`."""

    __slots__ = ("_future",)

    def __init__(self, future: Any) -> None:
        self._future = future

    @property
    def done(self) -> bool:
        return bool(self._future.is_done)

    def wait(self, timeout_s: float) -> None:
        from kafka.errors import KafkaTimeoutError

        try:
            self._future.get(timeout=timeout_s)
        except KafkaTimeoutError:
            if not self._future.is_done:
                raise
        except Exception:  # noqa: BLE001 - reported through `error`
            pass

    @property
    def error(self) -> BaseException | None:
        exception = self._future.exception
        if exception is None:
            return None
        if type(exception).__name__ in _PERMANENT_ERRORS:
            return PermanentTransportError(f"{type(exception).__name__}: {exception}")
        return exception


class KafkaTransport:
    """Produces each batch as one message, key = model (per-model ordering), to one topic.

    A `PipeliningTransport`: the emitter keeps several batches awaiting acks with `submit`.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        *,
        compression: str = "auto",
        options: dict[str, Any] | None = None,
    ) -> None:
        self.topic = topic
        self.compression = choose_compression(compression)
        self._config: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers.split(","),
            "client_id": "inferloop-sdk",
            "compression_type": self.compression,
            "bootstrap_timeout_ms": 2_000,
            "max_block_ms": 2_000,
            "request_timeout_ms": 10_000,
            "delivery_timeout_ms": 60_000,
            "reconnect_backoff_max_ms": 1_000,
            "max_request_size": 4 * 1024 * 1024,
            "batch_size": 1024 * 1024,
            "linger_ms": 0,
        }
        self._config.update(options or {})
        self._producer: Any = None
        self._delivery_timeout_s = self._config["delivery_timeout_ms"] / 1000 + 5

    def _ensure_producer(self) -> Any:
        if self._producer is None:
            from kafka import KafkaProducer

            self._producer = KafkaProducer(**self._config)  # raises KafkaTimeoutError if no broker
        return self._producer

    def submit(
        self, batch: bytes, *, key: str, on_done: Callable[[], None] | None = None
    ) -> Delivery:
        """Hand one batch to kafka-python without waiting for the ack (the emitter pipelines).

        Raises when the batch cannot even be queued (no producer yet, no metadata in time).
        """
        producer = self._ensure_producer()
        future = producer.send(self.topic, value=batch, key=key.encode())
        if on_done is not None:
            future.add_both(lambda _result: on_done())
        return Delivery(future)

    def send(self, batch: bytes, *, key: str) -> None:
        """The one-method Transport form: submit and wait for the broker's ack."""
        delivery = self.submit(batch, key=key)
        delivery.wait(self._delivery_timeout_s)
        error = delivery.error
        if error is not None:
            raise error

    def close(self, timeout_s: float = 1.0) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=timeout_s)
            finally:
                self._producer = None
