"""The emitter: a bounded queue filled by serving threads, drained by one daemon worker.

The serving thread only appends a tuple (see `_monitor`). Everything else — payload
extraction, sampling, redaction, serialisation, batching, sending, retrying — happens on
the worker, which stamps each event with this emitter's id and a contiguous sequence
number so the platform can count gaps, and reports drops in the next batch it sends.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from . import _cuda, _payload
from ._config import SDKConfig
from ._ids import EventIdFactory, new_emitter_id
from ._log import RateLimitedLog
from ._serialize import dumps
from ._transports import PermanentTransportError, Transport

SCHEMA_VERSION = 1
ERROR_MESSAGE_MAX = 1_000
_PLAIN_SCALARS = frozenset((int, float, str, bool, type(None)))
LABEL = object()
# One `ok`, sampled call of plain scalars, as JSON: field for field the dict that
# `_scalar_event` builds (tests compare both against the schema).
_SCALAR_EVENT = (
    b'{"schema_version":1,"kind":"inference","event_id":"%032x","emitter_id":"%s","seq":%d,%s,'
    b'"start_time_ns":%d,"latency_ns":%d,"device_time_ns":null,"status":"ok","error_type":null,'
    b'"error_message":null,"batch_size":1,"device":%s,"inputs":{"rows":[%s]},'
    b'"outputs":{"rows":[{"value":%s}]},"prediction_id":"%s-%x","tags":%s}'
)


def _spec_json(spec: Any, default_environment: str) -> tuple[bytes, bytes, bytes]:
    """The per-monitor constant parts of `_SCALAR_EVENT`: identity, device, tags."""
    identity = dumps({"model": spec.model, "version": spec.version,
                      "environment": spec.environment or default_environment})[1:-1]
    return identity, dumps(spec.device or "cpu"), dumps(spec.tags)  # first item of a label record, instead of a MonitorSpec
_SEND_FAILED = "send_failed"
MAX_IN_FLIGHT = 4  # batches awaiting the broker's ack at once (pipelining transports)


class _Batch:
    __slots__ = ("key", "data", "count", "report", "attempts", "first_failure", "handle")

    def __init__(self, key: str, data: bytes, count: int, report: dict[str, int]) -> None:
        self.key = key
        self.data = data
        self.count = count
        self.report = report
        self.attempts = 0
        self.first_failure: float | None = None
        self.handle: Any = None  # pending delivery of a pipelining transport


class Emitter:
    """Owns the queue, the worker thread, the transport and the counters of one process."""

    def __init__(self, config: SDKConfig, transport_factory: Callable[[], Transport]) -> None:
        self.config = config
        self._transport_factory = transport_factory
        self._transport: Transport | None = None
        self.emitter_id = new_emitter_id()
        self.prediction_prefix = self.emitter_id[:12]
        # Hot-path attributes: read by `_monitor` wrappers on every call.
        self.queue: deque[tuple[Any, ...]] = deque()
        self.queue_limit = config.queue_size
        self.wake_at = config.batch_size
        self.prediction_numbers = itertools.count()
        self.wake = threading.Event()
        # perf_counter_ns + offset = Unix ns, so the hot path reads one clock only.
        self.epoch_offset_ns = time.time_ns() - time.perf_counter_ns()
        self.cuda_active = _cuda.cuda_in_use()  # refreshed by the worker about once a second
        self._cuda_checked = time.monotonic()

        # Serving threads count queue-full drops with next() on an itertools.count: one C call,
        # atomic under the GIL, no lock even on the drop path.
        self._queue_full_counter = itertools.count()
        self.drop_queue_full = self._queue_full_counter.__next__
        self._queue_full_reported = 0
        self._unreported: dict[str, int] = {}
        self._event_ids = EventIdFactory()
        self._emitter_id_bytes = self.emitter_id.encode()
        self._prefix_bytes = self.prediction_prefix.encode()
        self._spec_json: dict[Any, tuple[bytes, bytes, bytes]] = {}
        self._seq = 0
        self._outbox: deque[_Batch] = deque()
        self._outbox_events = 0
        self._in_flight: list[_Batch] = []
        self._healthy_outbox = config.batch_size * (MAX_IN_FLIGHT + 2)
        self._retry_at = 0.0
        self._drained = 0
        self._counts = {"sent": 0, "failed": 0, "retried": 0, "batches": 0, "internal_errors": 0}
        self._dropped: dict[str, int] = {}
        self._log = RateLimitedLog()
        self._random = random.Random()
        self._redaction = _payload.Redaction(config.redact_fields, config.hash_salt, config.redact)
        self._idle = threading.Condition()
        self._idle_generation = 0
        self._flush_waiters = 0
        self._stopping = False
        self._abandon = False
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="inferloop-sdk-emitter", daemon=True)
        self._thread.start()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything enqueued before this call is sent (or given up). True if so."""
        if self._thread is None or not self._thread.is_alive():
            return not self.queue and not self._outbox
        deadline = time.monotonic() + timeout
        with self._idle:
            self._flush_waiters += 1
            target = self._idle_generation + 2  # one full idle cycle after this call began
            try:
                self.wake.set()
                while self._idle_generation < target:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._idle.wait(min(remaining, 0.05))
                    self.wake.set()
                return True
            finally:
                self._flush_waiters -= 1

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Flush, then stop the worker and close the transport. True if all was delivered."""
        started = time.monotonic()
        delivered = self.flush(timeout)
        # Out of time: the worker stops after its current step and what is left is abandoned,
        # so that an unreachable receiver cannot hold up the host's exit.
        self._abandon = not delivered
        self._stopping = True
        self.wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(max(0.0, timeout - (time.monotonic() - started)) + 1.0)
        return delivered

    # ------------------------------------------------------------------ serving-thread side
    def queue_full_drops(self) -> int:
        """Records the serving threads could not enqueue (read without stopping them)."""
        return int(repr(self._queue_full_counter)[len("count(") : -1])

    def enqueue_label(self, prediction_id: str, label: Any, model: str) -> None:
        if len(self.queue) < self.queue_limit:
            self.queue.append((LABEL, time.time_ns(), model, prediction_id, label))
        else:
            self.drop_queue_full()

    # ------------------------------------------------------------------ stats
    def stats(self) -> dict[str, Any]:
        queue_full = self.queue_full_drops()
        dropped = dict(self._dropped)
        if queue_full:
            dropped["queue_full"] = queue_full
        depth = len(self.queue)
        return {
            "emitter_id": self.emitter_id,
            "enqueued": self._drained + depth,
            "sent": self._counts["sent"],
            "dropped": dropped,
            "failed": self._counts["failed"],
            "retried": self._counts["retried"],
            "queue_depth": depth,
            "buffered": self._outbox_events,
            "batches": self._counts["batches"],
            "internal_errors": self._counts["internal_errors"],
        }

    # ------------------------------------------------------------------ worker
    def _run(self) -> None:
        while True:
            try:
                self._cycle()
            except Exception as exc:  # noqa: BLE001 - the worker must survive its own bugs
                self._counts["internal_errors"] += 1
                self._log.warning("worker", "inferloop SDK worker error: %r", exc)
                time.sleep(0.05)
            if self._stopping and (
                self._abandon or (not self.queue and not self._outbox) or self._retry_at > time.monotonic()
            ):
                break
        if self._abandon:
            left = len(self.queue) + self._outbox_events
            self.queue.clear()
            self._outbox.clear()
            self._outbox_events = 0
            if left:
                self._dropped["shutdown"] = self._dropped.get("shutdown", 0) + left
        self._close_transport()

    def _cycle(self) -> None:
        self.wake.clear()  # before looking at the state: a wake-up after this is never lost
        if time.monotonic() - self._cuda_checked > 1.0:
            self.cuda_active = _cuda.cuda_in_use()
            self._cuda_checked = time.monotonic()
        if self._may_drain():
            self._drain(limit=self.config.batch_size * 2)
        self._send_ready()
        if not self.queue and not self._outbox:
            with self._idle:
                self._idle_generation += 1
                self._idle.notify_all()
        if self._stopping:
            return
        if len(self.queue) >= self.wake_at and self._may_drain():
            return
        timeout = self.config.flush_interval_s
        if self._flush_waiters:
            timeout = 0.002
        if self._outbox and self._retry_at > 0:
            timeout = min(timeout, max(0.001, self._retry_at - time.monotonic()))
        elif self._outbox and len(self._in_flight) < MAX_IN_FLIGHT and not self._in_flight_all():
            timeout = 0.0  # batches are ready and a slot is free
        self.wake.wait(timeout)

    def _may_drain(self) -> bool:
        """While deliveries keep up, records wait in the queue (its bound is the back-pressure)
        rather than piling up as serialised batches; while the transport is failing, they are
        drained into the outbox so that its own bound (buffer_events) applies."""
        return self._outbox_events < self._healthy_outbox or self._retry_at > 0

    def _in_flight_all(self) -> bool:
        """True when every batch in the outbox is already in flight."""
        return len(self._in_flight) >= len(self._outbox)

    def _drain(self, limit: int) -> None:
        """Turn queued records into serialised batches in the outbox (one model per batch)."""
        queue = self.queue
        by_model: dict[str, list[bytes]] = {}
        taken = 0
        popleft = queue.popleft
        while taken < limit and not self._abandon:
            try:
                record = popleft()
            except IndexError:
                break
            taken += 1
            try:
                model, event = self._build(record)
            except Exception as exc:  # noqa: BLE001 - a bad record must not stop the others
                self._count_drop("internal_error", 1)
                self._counts["internal_errors"] += 1
                self._log.warning("build", "inferloop SDK could not build an event: %r", exc)
                continue
            events = by_model.get(model)
            if events is None:
                by_model[model] = [event]
            else:
                events.append(event)
        self._drained += taken
        queue_full = self.queue_full_drops()
        if queue_full > self._queue_full_reported:
            self._unreported["queue_full"] = (
                self._unreported.get("queue_full", 0) + queue_full - self._queue_full_reported
            )
            self._queue_full_reported = queue_full
        for model, events in by_model.items():
            self._batch(model, events)

    def _batch(self, model: str, encoded: list[bytes]) -> None:
        """Cut encoded events into batches by count and by bytes (no re-encoding).

        The first event of a batch carries the drops not yet reported to the platform.
        """
        header = b'{"schema_version":1,"emitter_id":"' + self.emitter_id.encode() + b'","events":['
        max_bytes = self.config.batch_max_bytes - len(header) - 2
        max_count = self.config.batch_size
        total = len(encoded)
        start = 0
        while start < total:
            report = self._unreported
            if report:  # splice `"dropped": {...}` into the event's closing brace
                encoded[start] = encoded[start][:-1] + b',"dropped":' + dumps(report) + b"}"
                self._unreported = {}
            size = len(encoded[start])
            end = start + 1
            limit = min(total, start + max_count)
            while end < limit:
                size += len(encoded[end]) + 1
                if size > max_bytes:
                    break
                end += 1
            self._add_batch(model, header + b",".join(encoded[start:end]) + b"]}", end - start, report)
            start = end

    def _add_batch(self, model: str, data: bytes, count: int, report: dict[str, int]) -> None:
        if self._outbox_events + count > self.config.buffer_events:
            self._restore_report(report)
            self._count_drop("buffer_full", count)
            self._log.warning("buffer", "inferloop SDK buffer full: dropping %d events", count)
            return
        self._outbox.append(_Batch(model, data, count, report))
        self._outbox_events += count

    def _send_ready(self) -> None:
        if self._transport is None:
            try:
                self._transport = self._transport_factory()
            except Exception as exc:  # noqa: BLE001 - retried like a failed send
                if self._outbox:
                    self._on_failure(self._outbox[0], exc)
                return
        submit = getattr(self._transport, "submit", None)
        if submit is None:
            self._send_one_by_one()
        else:
            self._reap_in_flight()
            self._submit_ready(submit)

    def _send_one_by_one(self) -> None:
        """Plain transports: `send()` returns once delivered, raises otherwise."""
        outbox = self._outbox
        while outbox:
            if time.monotonic() < self._retry_at:
                return
            batch = outbox[0]
            try:
                self._transport.send(batch.data, key=batch.key)  # type: ignore[union-attr]
            except Exception as exc:  # noqa: BLE001 - classified in _on_failure
                if not self._on_failure(batch, exc):
                    return
            else:
                self._on_success(batch)
                # Keep draining between sends so that serving threads never find a full queue
                # just because the outbox is long.
                if len(self.queue) >= self.wake_at and self._may_drain():
                    self._drain(limit=self.config.batch_size * 2)

    def _submit_ready(self, submit: Callable[..., Any]) -> None:
        """Pipelining transports (Kafka): keep up to MAX_IN_FLIGHT batches awaiting acks, so that
        building the next batch overlaps the broker's round trip."""
        in_flight = self._in_flight
        if time.monotonic() < self._retry_at:
            return
        waiting = [batch for batch in itertools.islice(self._outbox, 0, 2 * MAX_IN_FLIGHT) if batch.handle is None]
        for batch in waiting:
            if len(in_flight) >= MAX_IN_FLIGHT:
                return
            try:
                batch.handle = submit(batch.data, key=batch.key, on_done=self.wake.set)
            except Exception as exc:  # noqa: BLE001 - classified in _on_failure
                if not self._on_failure(batch, exc):
                    return
            else:
                in_flight.append(batch)

    def _reap_in_flight(self) -> None:
        if not self._in_flight:
            return
        still: list[_Batch] = []
        for batch in self._in_flight:
            handle = batch.handle
            if not handle.done:
                still.append(batch)
                continue
            batch.handle = None
            error = handle.error
            if error is None:
                self._on_success(batch)
            else:
                self._on_failure(batch, error)
        self._in_flight = still

    def _on_success(self, batch: _Batch) -> None:
        self._remove(batch)
        self._counts["sent"] += batch.count
        self._counts["batches"] += 1
        self._retry_at = 0.0

    def _on_failure(self, batch: _Batch, exc: BaseException) -> bool:
        """Count a failed attempt. True if the batch was given up (the caller may go on)."""
        if isinstance(exc, PermanentTransportError):
            self._give_up(batch, f"refused: {exc}")
            return True
        now = time.monotonic()
        self._counts["retried"] += 1
        batch.attempts += 1
        if batch.first_failure is None:
            batch.first_failure = now
        if now - batch.first_failure > self.config.retry_timeout_s:
            self._give_up(batch, f"gave up after {batch.attempts} attempts: {exc!r}")
            return True
        backoff = min(
            self.config.retry_backoff_max_s,
            self.config.retry_backoff_s * (2 ** min(batch.attempts - 1, 16)),
        )
        self._retry_at = now + backoff * (0.5 + self._random.random() / 2)
        self._log.warning("send", "inferloop SDK send failed, will retry: %r", exc)
        return False

    def _remove(self, batch: _Batch) -> None:
        if self._outbox and self._outbox[0] is batch:
            self._outbox.popleft()
        else:
            self._outbox.remove(batch)
        self._outbox_events -= batch.count

    def _give_up(self, batch: _Batch, why: str) -> None:
        self._remove(batch)
        self._counts["failed"] += batch.count
        self._restore_report(batch.report)
        self._unreported[_SEND_FAILED] = self._unreported.get(_SEND_FAILED, 0) + batch.count
        self._log.warning("failed", "inferloop SDK dropped a batch of %d events: %s", batch.count, why)

    def _restore_report(self, report: dict[str, int]) -> None:
        for reason, count in report.items():
            self._unreported[reason] = self._unreported.get(reason, 0) + count

    def _count_drop(self, reason: str, count: int) -> None:
        self._dropped[reason] = self._dropped.get(reason, 0) + count
        self._unreported[reason] = self._unreported.get(reason, 0) + count

    def _close_transport(self) -> None:
        close = getattr(self._transport, "close", None)
        if callable(close):
            try:
                close()
            except Exception as exc:  # noqa: BLE001
                self._log.warning("close", "inferloop SDK transport close failed: %r", exc)

    # ------------------------------------------------------------------ events
    def _next_seq(self) -> int:
        seq = self._seq
        self._seq = seq + 1
        return seq

    def _build(self, record: tuple[Any, ...]) -> tuple[str, bytes]:
        """One record as (model, the event's JSON)."""
        if record[0] is LABEL:
            _, time_ns, model, prediction_id, label = record
            seq = self._next_seq()
            return model, dumps({
                "schema_version": SCHEMA_VERSION,
                "kind": "label",
                "event_id": self._event_ids.make(time_ns, seq),
                "emitter_id": self.emitter_id,
                "seq": seq,
                "prediction_id": prediction_id,
                "model": model,
                "label": label,
                "time_ns": time_ns,
            })
        spec, started, latency, error, args, kwargs, result, prediction, extra = record
        start_ns = started + self.epoch_offset_ns
        config = self.config
        sampled = config.sample_rate >= 1.0 or self._random.random() < config.sample_rate
        if extra is None and spec.batch_size is None:
            row = spec.scalar_row(args, kwargs)
            if row is not None and len(row) * 300 <= config.payload_max_bytes:
                if (error is None and sampled and type(prediction) is int
                        and type(result) in _PLAIN_SCALARS and not self._redaction.active
                        and spec.capture_inputs and spec.capture_outputs
                        and (type(result) is not str or len(result) <= 256)):
                    return spec.model, self._scalar_event_json(spec, start_ns, latency, row, result, prediction)
                return spec.model, dumps(self._scalar_event(spec, start_ns, latency, error, row,
                                                            result, prediction, sampled))
        inputs_value = spec.inputs_of(args, kwargs)
        tags = spec.tags
        device = spec.device
        size = None
        device_time = None
        if extra is not None:
            if extra.inputs is not _payload.UNSET:
                inputs_value = extra.inputs
            if extra.outputs is not _payload.UNSET:
                result = extra.outputs
            if extra.tags:
                tags = {**tags, **extra.tags}
            size = extra.batch_size
            device = extra.device or device
            if extra.cuda is not None:
                device_time = _cuda_elapsed_ns(extra.cuda)
        if size is None:
            size = spec.batch_size_of(args, kwargs, inputs_value)
        if device is None:
            device = _payload.device_of(inputs_value) or _payload.device_of(result) or "cpu"
        inputs = outputs = None
        if sampled:
            inputs = self._payload(inputs_value, spec.capture_inputs)
            if error is None:
                outputs = self._payload(result, spec.capture_outputs)
        return spec.model, dumps(self._inference_event(
            spec, start_ns, latency, error, prediction, device_time=device_time, batch_size=size,
            device=device, inputs=inputs, outputs=outputs, tags=tags,
        ))

    def _scalar_event_json(self, spec: Any, start_ns: int, latency: int, row: dict[str, Any],
                           result: Any, prediction: int) -> bytes:
        """The hottest case written straight to JSON: an `ok` call of plain scalars, sampled."""
        constant = self._spec_json.get(spec)
        if constant is None:
            constant = self._spec_json[spec] = _spec_json(spec, self.config.environment)
        seq = self._seq
        self._seq = seq + 1
        return _SCALAR_EVENT % (
            self._event_ids.value(start_ns, seq), self._emitter_id_bytes, seq, constant[0],
            start_ns, latency, constant[1], dumps(row), dumps(result), self._prefix_bytes,
            prediction, constant[2],
        )

    def _scalar_event(self, spec: Any, start_ns: int, latency: int, error: BaseException | None,
                      row: dict[str, Any], result: Any, prediction: Any, sampled: bool) -> dict[str, Any]:
        """The common case, kept cheap: every argument a plain scalar (one row, batch of 1)."""
        inputs = outputs = None
        if sampled:
            inputs = {"rows": [row]} if spec.capture_inputs else None
            if error is None and spec.capture_outputs:
                kind = type(result)
                if kind in _PLAIN_SCALARS and (kind is not str or len(result) <= 256):
                    outputs = {"rows": [{"value": result}]}
                else:
                    outputs = self._payload(result, True)
            if self._redaction.active:
                try:
                    inputs = self._redaction.apply(inputs)
                    if error is None and type(result) in _PLAIN_SCALARS:
                        outputs = self._redaction.apply(outputs)
                except Exception as exc:  # noqa: BLE001 - a failing hook loses the payload only
                    self._counts["internal_errors"] += 1
                    self._log.warning("payload", "inferloop SDK redaction failed: %r", exc)
                    inputs = outputs = None
        return self._inference_event(
            spec, start_ns, latency, error, prediction, device_time=None, batch_size=1,
            device=spec.device or "cpu", inputs=inputs, outputs=outputs, tags=spec.tags,
        )

    def _inference_event(self, spec: Any, start_ns: int, latency: int, error: BaseException | None,
                         prediction: Any, *, device_time: int | None, batch_size: int, device: str,
                         inputs: Any, outputs: Any, tags: dict[str, str]) -> dict[str, Any]:
        """One inference event laid out as docs/event-contract.md says, with the next seq."""
        seq = self._next_seq()
        if type(prediction) is int:
            prediction = f"{self.prediction_prefix}-{prediction:x}"
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "inference",
            "event_id": self._event_ids.make(start_ns, seq),
            "emitter_id": self.emitter_id,
            "seq": seq,
            "model": spec.model,
            "version": spec.version,
            "environment": spec.environment or self.config.environment,
            "start_time_ns": start_ns,
            "latency_ns": latency,
            "device_time_ns": device_time,
            "status": "ok" if error is None else "error",
            "error_type": None if error is None else type(error).__name__,
            "error_message": None if error is None else _error_message(error),
            "batch_size": batch_size,
            "device": device,
            "inputs": inputs,
            "outputs": outputs,
            "prediction_id": str(prediction),
            "tags": tags,
        }

    def _payload(self, value: Any, capture: bool) -> dict[str, Any] | None:
        if not capture or value is None:
            return None
        try:
            payload = _payload.extract(value, self.config.max_rows)
            if self._redaction.active:
                payload = self._redaction.apply(payload)
            return _payload.cap_size(payload, self.config.payload_max_bytes, dumps)
        except Exception as exc:  # noqa: BLE001 - an odd payload loses its payload, not its event
            self._counts["internal_errors"] += 1
            self._log.warning("payload", "inferloop SDK could not summarise a payload: %r", exc)
            return None


def _error_message(error: BaseException) -> str:
    try:
        message = str(error)
    except Exception:  # noqa: BLE001
        message = f"<unprintable {type(error).__name__}>"
    return message[:ERROR_MESSAGE_MAX]


def _cuda_elapsed_ns(events: tuple[Any, Any]) -> int | None:
    """Device time between two CUDA events, resolved here on the worker (never on the caller)."""
    start, end = events
    try:
        end.synchronize()  # waits for the device on the worker thread only
        return int(start.elapsed_time(end) * 1_000_000)
    except Exception:  # noqa: BLE001 - a lost context must not lose the event
        return None
