"""SDK configuration: `configure(...)` arguments win over `INFERLOOP_*` variables, which win
over defaults. Read with the standard library only, so the SDK imports without pydantic."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Environment variables, one constant each (the names are the documentation).
ENV_TRANSPORT = "INFERLOOP_SDK_TRANSPORT"  # kafka | http | memory | file | off
ENV_KAFKA_BOOTSTRAP_SERVERS = "INFERLOOP_KAFKA_BOOTSTRAP_SERVERS"
ENV_KAFKA_TOPIC = "INFERLOOP_KAFKA_TOPIC"
ENV_KAFKA_COMPRESSION = "INFERLOOP_KAFKA_COMPRESSION"  # auto | none | gzip | snappy | lz4 | zstd
ENV_ENDPOINT = "INFERLOOP_ENDPOINT"  # HTTP transport: base URL of the Inferloop server
ENV_API_KEY = "INFERLOOP_API_KEY"
ENV_SAMPLE_RATE = "INFERLOOP_SAMPLE_RATE"  # share of calls whose inputs/outputs are kept
ENV_QUEUE_SIZE = "INFERLOOP_QUEUE_SIZE"  # bound of the serving-thread queue (records)
ENV_BUFFER_EVENTS = "INFERLOOP_BUFFER_EVENTS"  # bound of events held while the transport fails
ENV_BATCH_SIZE = "INFERLOOP_BATCH_SIZE"  # events per batch, at most
ENV_FLUSH_INTERVAL_MS = "INFERLOOP_FLUSH_INTERVAL_MS"  # longest wait before a partial batch goes
ENV_FILE_PATH = "INFERLOOP_FILE_PATH"  # file transport: path, or "-" for stdout
ENV_SDK_ENVIRONMENT = "INFERLOOP_SDK_ENVIRONMENT"  # deployment name stamped on events
ENV_PAYLOAD_MAX_BYTES = "INFERLOOP_PAYLOAD_MAX_BYTES"
ENV_MAX_ROWS = "INFERLOOP_MAX_ROWS"

TRANSPORTS = ("kafka", "http", "memory", "file", "off")
DEFAULT_KAFKA_BOOTSTRAP_SERVERS = "127.0.0.1:9092"
DEFAULT_KAFKA_TOPIC = "inferloop.events"  # same as the platform's Settings.kafka_topic
DEFAULT_ENDPOINT = "http://127.0.0.1:8765"  # the embedded `inferloop up` server
DEFAULT_QUEUE_SIZE = 65_536
DEFAULT_BUFFER_EVENTS = 100_000
DEFAULT_BATCH_SIZE = 2_000
DEFAULT_BATCH_MAX_BYTES = 1_000_000  # under Kafka's default message.max.bytes (1,048,588)
DEFAULT_FLUSH_INTERVAL_MS = 200
DEFAULT_PAYLOAD_MAX_BYTES = 16_384
DEFAULT_MAX_ROWS = 16
DEFAULT_ENVIRONMENT = "default"

Redactor = Callable[[dict[str, Any]], "dict[str, Any] | None"]


@dataclass(frozen=True, kw_only=True)
class SDKConfig:
    """Resolved settings of one emitter; validated at construction."""

    transport: Any = "http"  # a name from TRANSPORTS or a Transport instance
    kafka_bootstrap_servers: str = DEFAULT_KAFKA_BOOTSTRAP_SERVERS
    kafka_topic: str = DEFAULT_KAFKA_TOPIC
    kafka_compression: str = "auto"
    kafka_options: Mapping[str, Any] = field(default_factory=dict)
    endpoint: str = DEFAULT_ENDPOINT
    api_key: str | None = None
    file_path: str = "-"
    sample_rate: float = 1.0
    queue_size: int = DEFAULT_QUEUE_SIZE
    buffer_events: int = DEFAULT_BUFFER_EVENTS
    batch_size: int = DEFAULT_BATCH_SIZE
    batch_max_bytes: int = DEFAULT_BATCH_MAX_BYTES
    flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_MS / 1000
    retry_backoff_s: float = 0.1
    retry_backoff_max_s: float = 5.0
    retry_timeout_s: float = 300.0
    environment: str = DEFAULT_ENVIRONMENT
    payload_max_bytes: int = DEFAULT_PAYLOAD_MAX_BYTES
    max_rows: int = DEFAULT_MAX_ROWS
    redact: Redactor | None = None
    redact_fields: Mapping[str, str] = field(default_factory=dict)
    hash_salt: str = ""
    register_prometheus: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.transport, str) and self.transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {TRANSPORTS} or a Transport instance")
        if not isinstance(self.transport, str) and not callable(
            getattr(self.transport, "send", None)
        ):
            raise ValueError("a transport instance needs a send(batch, *, key) method")
        if not 0.0 <= self.sample_rate <= 1.0:
            raise ValueError("sample_rate must be between 0 and 1")
        for name in ("queue_size", "buffer_events", "batch_size", "batch_max_bytes", "max_rows"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.flush_interval_s <= 0:
            raise ValueError("flush_interval_s must be positive")
        for field_name, action in self.redact_fields.items():
            if action not in ("drop", "hash"):
                raise ValueError(f"redact_fields[{field_name!r}] must be 'drop' or 'hash'")


_ENV_FIELDS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "transport": (ENV_TRANSPORT, str.strip),
    "kafka_bootstrap_servers": (ENV_KAFKA_BOOTSTRAP_SERVERS, str.strip),
    "kafka_topic": (ENV_KAFKA_TOPIC, str.strip),
    "kafka_compression": (ENV_KAFKA_COMPRESSION, str.strip),
    "endpoint": (ENV_ENDPOINT, str.strip),
    "api_key": (ENV_API_KEY, str),
    "file_path": (ENV_FILE_PATH, str),
    "sample_rate": (ENV_SAMPLE_RATE, float),
    "queue_size": (ENV_QUEUE_SIZE, int),
    "buffer_events": (ENV_BUFFER_EVENTS, int),
    "batch_size": (ENV_BATCH_SIZE, int),
    "flush_interval_s": (ENV_FLUSH_INTERVAL_MS, lambda text: float(text) / 1000),
    "environment": (ENV_SDK_ENVIRONMENT, str.strip),
    "payload_max_bytes": (ENV_PAYLOAD_MAX_BYTES, int),
    "max_rows": (ENV_MAX_ROWS, int),
}


def resolve_config(
    arguments: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> SDKConfig:
    """Merge explicit arguments (None means "not given") over the environment over defaults."""
    environ = os.environ if environ is None else environ
    unknown = set(arguments) - set(SDKConfig.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown configure() arguments: {sorted(unknown)}")
    values: dict[str, Any] = {}
    for name, (variable, parse) in _ENV_FIELDS.items():
        text = environ.get(variable)
        if text:
            try:
                values[name] = parse(text)
            except ValueError as exc:
                raise ValueError(f"{variable}={text!r} is not valid: {exc}") from None
    values.update({name: value for name, value in arguments.items() if value is not None})
    return SDKConfig(**values)
