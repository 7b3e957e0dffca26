"""Kafka transport (kafka-python), created and used on the worker thread only.

kafka-python blocks where a serving thread must not: `KafkaProducer()` bootstraps (30 s by
default with no broker) and `send()` waits up to `max_block_ms` (60 s) for metadata. Here
both run on the SDK's worker with short bounds, and failures are retried by the emitter,
whose bounded buffer absorbs an outage.
"""

from __future__ import annotations

import importlib.util
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


class KafkaTransport:
    """Produces each batch as one message, key = model (per-model ordering), to one topic."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        *,
        compression: str = "auto",
        wait_s: float = 1.0,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.topic = topic
        self.compression = choose_compression(compression)
        self._wait_s = wait_s
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
        self._in_flight: tuple[bytes, Any] | None = None

    def _ensure_producer(self) -> Any:
        if self._producer is None:
            from kafka import KafkaProducer

            self._producer = KafkaProducer(**self._config)  # raises KafkaTimeoutError if no broker
        return self._producer

    def send(self, batch: bytes, *, key: str) -> None:
        from kafka.errors import KafkaError, KafkaTimeoutError

        producer = self._ensure_producer()
        # A retry of the batch still in flight waits on the same produce request instead of
        # sending a duplicate: kafka-python keeps retrying it until delivery_timeout_ms.
        if self._in_flight is not None and self._in_flight[0] is batch and not self._in_flight[1].is_done:
            future = self._in_flight[1]
        else:
            future = producer.send(self.topic, value=batch, key=key.encode())
            self._in_flight = (batch, future)
        try:
            future.get(timeout=self._wait_s)
        except KafkaTimeoutError:
            raise
        except KafkaError as exc:
            self._in_flight = None
            if not getattr(exc, "retriable", False) and type(exc).__name__ in (
                "MessageSizeTooLargeError",
                "RecordTooLargeError",
                "InvalidRecordError",
                "TopicAuthorizationFailedError",
            ):
                raise PermanentTransportError(f"{type(exc).__name__}: {exc}") from exc
            raise
        self._in_flight = None

    def close(self, timeout_s: float = 1.0) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=timeout_s)
            finally:
                self._producer = None
