"""Inferloop SDK: monitor model calls from serving code without slowing them down.

    from inferloop.sdk import configure, monitor, log_label, last_prediction_id

    configure(transport="kafka", kafka_bootstrap_servers="broker:9092")

    @monitor(model="fraud", version="3")
    def predict(features): ...

Standard library only at import time; kafka-python, numpy, torch, orjson are used when
present. See docs/sdk.md.
"""

from ._config import (
    DEFAULT_KAFKA_TOPIC,
    ENV_API_KEY,
    ENV_BATCH_SIZE,
    ENV_BUFFER_EVENTS,
    ENV_ENDPOINT,
    ENV_FILE_PATH,
    ENV_FLUSH_INTERVAL_MS,
    ENV_KAFKA_BOOTSTRAP_SERVERS,
    ENV_KAFKA_COMPRESSION,
    ENV_KAFKA_TOPIC,
    ENV_MAX_ROWS,
    ENV_PAYLOAD_MAX_BYTES,
    ENV_QUEUE_SIZE,
    ENV_SAMPLE_RATE,
    ENV_SDK_ENVIRONMENT,
    ENV_TRANSPORT,
    SDKConfig,
)
from ._kafka import KafkaTransport
from ._monitor import Call, Monitor, last_prediction_id, monitor
from ._payload import register_extractor
from ._runtime import configure, flush, log_label, shutdown, stats
from ._schema import COLUMNAR_SCHEMA_PATH, SCHEMA_PATH, load_schema
from ._transports import (
    Closeable,
    FileTransport,
    HttpTransport,
    MemoryTransport,
    PartiallyRejected,
    PendingDelivery,
    PermanentTransportError,
    PipeliningTransport,
    RetryLater,
    Transport,
    events_of,
)

__all__ = [
    "COLUMNAR_SCHEMA_PATH",
    "DEFAULT_KAFKA_TOPIC",
    "ENV_API_KEY",
    "ENV_BATCH_SIZE",
    "ENV_BUFFER_EVENTS",
    "ENV_ENDPOINT",
    "ENV_FILE_PATH",
    "ENV_FLUSH_INTERVAL_MS",
    "ENV_KAFKA_BOOTSTRAP_SERVERS",
    "ENV_KAFKA_COMPRESSION",
    "ENV_KAFKA_TOPIC",
    "ENV_MAX_ROWS",
    "ENV_PAYLOAD_MAX_BYTES",
    "ENV_QUEUE_SIZE",
    "ENV_SAMPLE_RATE",
    "ENV_SDK_ENVIRONMENT",
    "ENV_TRANSPORT",
    "SCHEMA_PATH",
    "Call",
    "Closeable",
    "FileTransport",
    "HttpTransport",
    "KafkaTransport",
    "MemoryTransport",
    "Monitor",
    "PartiallyRejected",
    "PendingDelivery",
    "PermanentTransportError",
    "PipeliningTransport",
    "RetryLater",
    "SDKConfig",
    "Transport",
    "configure",
    "events_of",
    "flush",
    "last_prediction_id",
    "load_schema",
    "log_label",
    "monitor",
    "register_extractor",
    "shutdown",
    "stats",
]
