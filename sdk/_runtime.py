"""Process-wide lifecycle: configure, flush, shutdown, stats, labels, fork and exit hooks."""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
from typing import Any

from . import _metrics, _state
from ._config import ENV_TRANSPORT, SDKConfig, resolve_config
from ._emitter import Emitter
from ._kafka import KafkaTransport
from ._log import logger
from ._transports import FileTransport, HttpTransport, MemoryTransport, Transport

_lock = threading.Lock()
_atexit_registered = False
_environment_checked = False


def _transport_factory(config: SDKConfig) -> Any:
    """How the worker builds its transport (again in a forked child: sockets are not shared)."""
    transport = config.transport
    if not isinstance(transport, str):
        return lambda: transport
    if transport == "kafka":
        return lambda: KafkaTransport(
            config.kafka_bootstrap_servers,
            config.kafka_topic,
            compression=config.kafka_compression,
            options=dict(config.kafka_options),
        )
    if transport == "http":
        return lambda: HttpTransport(config.endpoint, api_key=config.api_key)
    if transport == "file":
        return lambda: FileTransport(config.file_path)
    if transport == "memory":
        memory = MemoryTransport()
        return lambda: memory
    raise ValueError(f"no factory for transport {transport!r}")


def configure(
    *,
    transport: str | Transport | None = None,
    kafka_bootstrap_servers: str | None = None,
    kafka_topic: str | None = None,
    endpoint: str | None = None,
    api_key: str | None = None,
    sample_rate: float | None = None,
    queue_size: int | None = None,
    **options: Any,
) -> Transport | None:
    """Start (or restart) monitoring. Arguments win over `INFERLOOP_*` variables.

    Returns the transport instance for "memory" (so tests can read events back) or the one
    passed in; None otherwise. `transport="off"` leaves `@monitor` a no-op.
    Other options: see `SDKConfig` (batch_size, buffer_events, redact, redact_fields, ...).
    """
    global _atexit_registered
    arguments = {
        "transport": transport,
        "kafka_bootstrap_servers": kafka_bootstrap_servers,
        "kafka_topic": kafka_topic,
        "endpoint": endpoint,
        "api_key": api_key,
        "sample_rate": sample_rate,
        "queue_size": queue_size,
        **options,
    }
    config = resolve_config(arguments)
    with _lock:
        previous = _state.emitter
        _state.emitter = None
        if previous is not None:
            previous.shutdown(timeout=2.0)
        if config.transport == "off":
            return None
        factory = _transport_factory(config)
        emitter = Emitter(config, factory)
        emitter.start()
        _state.emitter = emitter
        if not _atexit_registered:
            atexit.register(_shutdown_at_exit)
            _atexit_registered = True
        if config.register_prometheus:
            try:
                _metrics.register(stats)
            except Exception as exc:  # noqa: BLE001 - metrics are a convenience
                logger.warning("inferloop SDK could not register Prometheus metrics: %r", exc)
    if config.transport == "memory" or not isinstance(config.transport, str):
        return factory()
    return None


def configure_from_environment() -> None:
    """Start monitoring from `INFERLOOP_*` variables alone, once per process.

    Called when the first model is decorated, so a deployment can switch monitoring on
    by its environment without a `configure()` call in the serving code. An explicit
    `configure()` wins; a bad setting is logged, never raised into the host.
    """
    global _environment_checked
    if _environment_checked or _state.emitter is not None:
        return
    _environment_checked = True
    transport = os.environ.get(ENV_TRANSPORT, "").strip().lower()
    if transport in ("", "off"):
        return
    try:
        configure()
    except Exception as exc:  # noqa: BLE001 - the host must start even if monitoring cannot
        logger.warning(
            "inferloop SDK: %s=%r did not start monitoring: %r", ENV_TRANSPORT, transport, exc
        )


def flush(timeout: float = 5.0) -> bool:
    """Block until queued events are delivered; True if they were within the timeout.

    In asyncio code call it through `await asyncio.to_thread(flush)`.
    """
    emitter = _state.emitter
    return True if emitter is None else emitter.flush(timeout)


def shutdown(timeout: float = 5.0) -> bool:
    """Flush, stop the worker and return to the no-op state. Registered to run at exit."""
    with _lock:
        emitter = _state.emitter
        _state.emitter = None
    return True if emitter is None else emitter.shutdown(timeout)


def stats() -> dict[str, Any]:
    """Counters of the current emitter (zeros when unconfigured)."""
    emitter = _state.emitter
    if emitter is None:
        return {
            "emitter_id": None,
            "enqueued": 0,
            "sent": 0,
            "dropped": {},
            "failed": 0,
            "retried": 0,
            "queue_depth": 0,
            "buffered": 0,
            "batches": 0,
            "internal_errors": 0,
        }
    return emitter.stats()


def log_label(prediction_id: str, label: Any, *, model: str) -> None:
    """Record the ground truth of an earlier prediction; the platform joins them by id."""
    emitter = _state.emitter
    if emitter is None:
        return
    emitter.enqueue_label(str(prediction_id), label, model)


def _shutdown_at_exit() -> None:
    with contextlib.suppress(Exception):  # never fail interpreter exit
        shutdown(timeout=5.0)


def _reinit_in_child() -> None:
    """After fork: the parent's queue, worker thread and sockets are not ours. Start afresh."""
    global _lock
    _lock = threading.Lock()
    parent = _state.emitter
    if parent is None:
        return
    child = Emitter(parent.config, _transport_factory_for_child(parent))
    _state.emitter = child
    child.start()


def _transport_factory_for_child(parent: Emitter) -> Any:
    if parent.config.transport == "memory":
        return parent._transport_factory  # same object: in-memory events stay readable
    return _transport_factory(parent.config)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_in_child)
