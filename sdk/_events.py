"""Event building: queued records become the JSON of events, on the worker thread only.

Payload extraction, sampling, redaction and serialisation happen here, never on the
serving thread. Each event is stamped with the emitter's id and a contiguous sequence
number, so that the platform can count gaps. Laid out as docs/event-contract.md says.
"""

from __future__ import annotations

import random
import time
from typing import Any

from . import _payload
from ._config import SDKConfig
from ._ids import EventIdFactory, prediction_id, prediction_prefix
from ._log import RateLimitedLog
from ._record import CallExtras, LabelRecord, Record
from ._serialize import dumps

SCHEMA_VERSION = 1
ERROR_MESSAGE_MAX = 1_000
_PLAIN_SCALARS = frozenset((int, float, str, bool, type(None)))
# One `ok`, sampled call of plain scalars, as JSON: field for field the dict that
# `_scalar_event` builds (a test compares both, and both against the schema). Its
# `"%s-%x"` is `_ids.prediction_id` written as a template (a test checks they agree).
_SCALAR_EVENT = (
    b'{"schema_version":1,"kind":"inference","event_id":"%032x","emitter_id":"%s","seq":%d,%s,'
    b'"start_time_ns":%d,"latency_ns":%d,"device_time_ns":null,"status":"ok","error_type":null,'
    b'"error_message":null,"batch_size":1,"device":%s,"inputs":{"rows":[%s]},'
    b'"outputs":{"rows":[{"value":%s}]},"prediction_id":"%s-%x","tags":%s}'
)


def _spec_json(spec: Any, default_environment: str) -> tuple[bytes, bytes, bytes]:
    """The per-monitor constant parts of `_SCALAR_EVENT`: identity, device, tags."""
    identity = dumps(
        {
            "model": spec.model,
            "version": spec.version,
            "environment": spec.environment or default_environment,
        }
    )[1:-1]
    return identity, dumps(spec.device or "cpu"), dumps(spec.tags)


class EventBuilder:
    """Builds one emitter's events: owns its sequence, its event ids and its sampling."""

    def __init__(self, config: SDKConfig, emitter_id: str, log: RateLimitedLog) -> None:
        self.config = config
        self.emitter_id = emitter_id
        self.prediction_prefix = prediction_prefix(emitter_id)
        self.internal_errors = 0  # payloads lost to failing extractors or redaction hooks
        # perf_counter_ns + offset = Unix ns, so the hot path reads one clock only.
        self.epoch_offset_ns = time.time_ns() - time.perf_counter_ns()
        self._log = log
        self._event_ids = EventIdFactory(emitter_id)
        self._emitter_id_bytes = emitter_id.encode()
        self._prefix_bytes = self.prediction_prefix.encode()
        self._spec_json: dict[Any, tuple[bytes, bytes, bytes]] = {}
        self._seq = 0
        self._random = random.Random()
        self._redaction = _payload.Redaction(config.redact_fields, config.hash_salt, config.redact)

    def _next_seq(self) -> int:
        seq = self._seq
        self._seq = seq + 1
        return seq

    def take_seqs(self, count: int) -> int:
        """Reserve `count` consecutive sequence numbers (a columnar block); the first."""
        first = self._seq
        self._seq = first + count
        return first

    @property
    def redacting(self) -> bool:
        return self._redaction.active

    def build(self, record: Record) -> tuple[str, bytes]:
        """One record as (model, the event's JSON)."""
        if type(record) is LabelRecord:
            return record.model, self._label_event(record)
        # Unpacked in CallRecord's field order: the hot path queues plain tuples (see _record).
        spec, started, latency, error, args, kwargs, result, prediction, extra = record
        start_ns = started + self.epoch_offset_ns
        config = self.config
        sampled = config.sample_rate >= 1.0 or self._random.random() < config.sample_rate
        if extra is None and spec.batch_size is None:
            row = spec.scalar_row(args, kwargs)
            if row is not None and len(row) * 300 <= config.payload_max_bytes:
                if (
                    error is None
                    and sampled
                    and type(prediction) is int
                    and type(result) in _PLAIN_SCALARS
                    and not self._redaction.active
                    and spec.capture_inputs
                    and spec.capture_outputs
                    and (type(result) is not str or len(result) <= 256)
                ):
                    event = self._scalar_event_json(
                        spec, start_ns, latency, row, result, prediction
                    )
                    return spec.model, event
                event_dict = self._scalar_event(
                    spec, start_ns, latency, error, row, result, prediction, sampled
                )
                return spec.model, dumps(event_dict)
        event_dict = self._general_event(
            spec, start_ns, latency, error, args, kwargs, result, prediction, extra, sampled
        )
        return spec.model, dumps(event_dict)

    def _label_event(self, record: LabelRecord) -> bytes:
        seq = self._next_seq()
        return dumps(
            {
                "schema_version": SCHEMA_VERSION,
                "kind": "label",
                "event_id": self._event_ids.make(record.time_ns, seq),
                "emitter_id": self.emitter_id,
                "seq": seq,
                "prediction_id": record.prediction_id,
                "model": record.model,
                "label": record.label,
                "time_ns": record.time_ns,
            }
        )

    def _general_event(
        self,
        spec: Any,
        start_ns: int,
        latency: int,
        error: BaseException | None,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        result: Any,
        prediction: Any,
        extra: CallExtras | None,
        sampled: bool,
    ) -> dict[str, Any]:
        """Any call: payloads extracted, the call's extras (context-manager form) applied."""
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
        return self._inference_event(
            spec,
            start_ns,
            latency,
            error,
            prediction,
            device_time=device_time,
            batch_size=size,
            device=device,
            inputs=inputs,
            outputs=outputs,
            tags=tags,
        )

    def _scalar_event_json(
        self,
        spec: Any,
        start_ns: int,
        latency: int,
        row: dict[str, Any],
        result: Any,
        prediction: int,
    ) -> bytes:
        """The hottest case written straight to JSON: an `ok` call of plain scalars, sampled."""
        constant = self._spec_json.get(spec)
        if constant is None:
            constant = self._spec_json[spec] = _spec_json(spec, self.config.environment)
        seq = self._seq
        self._seq = seq + 1
        return _SCALAR_EVENT % (
            self._event_ids.value(start_ns, seq),
            self._emitter_id_bytes,
            seq,
            constant[0],
            start_ns,
            latency,
            constant[1],
            dumps(row),
            dumps(result),
            self._prefix_bytes,
            prediction,
            constant[2],
        )

    def _scalar_event(
        self,
        spec: Any,
        start_ns: int,
        latency: int,
        error: BaseException | None,
        row: dict[str, Any],
        result: Any,
        prediction: Any,
        sampled: bool,
    ) -> dict[str, Any]:
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
                    self.internal_errors += 1
                    self._log.warning("payload", "inferloop SDK redaction failed: %r", exc)
                    inputs = outputs = None
        return self._inference_event(
            spec,
            start_ns,
            latency,
            error,
            prediction,
            device_time=None,
            batch_size=1,
            device=spec.device or "cpu",
            inputs=inputs,
            outputs=outputs,
            tags=spec.tags,
        )

    def _inference_event(
        self,
        spec: Any,
        start_ns: int,
        latency: int,
        error: BaseException | None,
        prediction: Any,
        *,
        device_time: int | None,
        batch_size: int,
        device: str,
        inputs: Any,
        outputs: Any,
        tags: dict[str, str],
    ) -> dict[str, Any]:
        """One inference event laid out as docs/event-contract.md says, with the next seq."""
        seq = self._next_seq()
        if type(prediction) is int:
            prediction = prediction_id(self.prediction_prefix, prediction)
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
            self.internal_errors += 1
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
