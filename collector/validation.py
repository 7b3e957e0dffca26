"""Batch validation: bytes in, table rows and rejections out; never raises on bad input.

The hot path decodes and validates a whole batch in one msgspec call (C speed,
no per-event Python). Only when that fails does the slow path decode the batch
generically and validate event by event, so that one bad event costs its own
dead letter and not its neighbours'.

An inference leaves validation as its ``events`` row only (a tuple in
EVENT_COLUMNS order): the decoded struct is dropped here, and everything
downstream (insert, rollups, delivery ranges) reads the row. The one field a
row lacks, the SDK's drop report, is kept aside for the rare events carrying one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import msgspec

from inferloop.grains import minute_of_ns

from .contract import MAX_PAYLOAD_BYTES, AnyEvent, Batch, EmitterId, InferenceEvent, LabelEvent
from .rejection import Rejection, RejectionCode


class _Envelope(msgspec.Struct, frozen=True, gc=False):
    """The batch with events left undecoded, for the per-event slow path."""

    schema_version: Literal[1]
    emitter_id: EmitterId
    events: list[msgspec.Raw]


class _RawEvents(msgspec.Struct, frozen=True, gc=False):
    events: list[msgspec.Raw]


_batch_decoder = msgspec.json.Decoder(Batch)
_envelope_decoder = msgspec.json.Decoder(_Envelope)
_event_decoder = msgspec.json.Decoder(AnyEvent)
_raw_events_decoder = msgspec.json.Decoder(_RawEvents)


@dataclass(frozen=True, slots=True)
class DropReport:
    """The SDK's drop counts carried by one event, filed under the minute of that event."""

    event_id: str
    model: str
    minute_start_s: int
    counts: dict[str, int]


@dataclass(slots=True)
class Validated:
    """The outcome of validating one message: good events, and what was refused."""

    rows: list[tuple] = field(default_factory=list)
    """One ``events`` row per kept inference, columns in EVENT_COLUMNS order; the JSON
    columns (JSON_COLUMNS) hold UTF-8 ``bytes`` (or None), not ``str``."""
    labels: list[LabelEvent] = field(default_factory=list)
    drops: list[DropReport] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    row_positions: list[int] = field(default_factory=list)
    label_positions: list[int] = field(default_factory=list)
    """Index in the batch of each kept event, for dead letters raised later by the store."""


_OBJECT_OR_NULL = frozenset(b"{n")
_encode = msgspec.json.encode


def _split(
    events: list[AnyEvent],
    into: Validated,
    raws: list[bytes] | None,
    positions: list[int],
    received_at_ns: int,
) -> None:
    """Check what msgspec types cannot express, and build each inference's table row.

    One pass per event: this loop is the per-event Python cost of ingest.
    """
    limit = MAX_PAYLOAD_BYTES
    rows = into.rows
    row_positions = into.row_positions
    for position, (index, event) in enumerate(zip(positions, events, strict=True)):
        if type(event) is InferenceEvent:
            inputs = bytes(event.inputs)
            outputs = bytes(event.outputs)
            if (
                inputs[0] in _OBJECT_OR_NULL
                and outputs[0] in _OBJECT_OR_NULL
                and len(inputs) <= limit
                and len(outputs) <= limit
            ):
                row_positions.append(index)
                rows.append(
                    (
                        event.event_id,
                        event.emitter_id,
                        event.seq,
                        event.model,
                        event.version,
                        event.environment,
                        event.start_time_ns,
                        event.latency_ns,
                        event.device_time_ns,
                        event.status,
                        event.error_type,
                        event.error_message,
                        event.batch_size,
                        event.device,
                        # JSON columns stay bytes: PostgreSQL's binary COPY takes
                        # the UTF-8 text as is (no decode here, no encode in
                        # psycopg); the SQLite writer decodes them itself.
                        None if inputs == b"null" else inputs,
                        None if outputs == b"null" else outputs,
                        event.prediction_id,
                        _encode(event.tags),
                        received_at_ns,
                    )
                )
                if event.dropped:
                    into.drops.append(
                        DropReport(
                            event.event_id,
                            event.model,
                            minute_of_ns(event.start_time_ns),
                            event.dropped,
                        )
                    )
                continue
            problem = _payload_problem(inputs, outputs, limit)
        elif len(event.label) > limit:
            problem = f"`label` is {len(event.label)} bytes, more than the {limit} allowed"
        else:
            into.labels.append(event)
            into.label_positions.append(index)
            if event.dropped:
                into.drops.append(
                    DropReport(
                        event.event_id, event.model, minute_of_ns(event.time_ns), event.dropped
                    )
                )
            continue
        raw = raws[position] if raws is not None else _encode(event)
        into.rejections.append(
            Rejection(RejectionCode.INVALID, f"{problem} - at `$.events[{index}]`", raw, index)
        )


def _payload_problem(inputs: bytes, outputs: bytes, limit: int) -> str:
    if inputs[0] not in _OBJECT_OR_NULL:
        return "`inputs` must be an object or null"
    if outputs[0] not in _OBJECT_OR_NULL:
        return "`outputs` must be an object or null"
    name, size = ("inputs", len(inputs)) if len(inputs) > limit else ("outputs", len(outputs))
    return f"`{name}` is {size} bytes, more than the {limit} allowed"


def validate_batch(
    raw: bytes, *, max_bytes: int | None = None, received_at_ns: int = 0
) -> Validated:
    """Decode and validate one batch message; never raises on bad input.

    ``received_at_ns`` is stamped on every row: the pipeline passes one instant
    per batch, so the events and labels of a batch share their receive time.
    """
    result = Validated()
    if max_bytes is not None and len(raw) > max_bytes:
        reason = f"message is {len(raw)} bytes, more than the {max_bytes} allowed"
        result.rejections.append(Rejection(RejectionCode.TOO_LARGE, reason, raw))
        return result
    try:
        batch = _batch_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
        return _validate_slowly(raw, received_at_ns)
    _split(batch.events, result, None, list(range(len(batch.events))), received_at_ns)
    return result


def _validate_slowly(raw: bytes, received_at_ns: int) -> Validated:
    result = Validated()
    try:
        envelope = _envelope_decoder.decode(raw)
    except UnicodeDecodeError as error:
        reason = f"not valid UTF-8: {error}"
        result.rejections.append(Rejection(RejectionCode.UNDECODABLE, reason, raw))
        return result
    except msgspec.ValidationError as error:
        result.rejections.append(Rejection(RejectionCode.INVALID, f"invalid batch: {error}", raw))
        return result
    except (msgspec.DecodeError, ValueError) as error:
        reason = f"not decodable as JSON: {error}"
        result.rejections.append(Rejection(RejectionCode.UNDECODABLE, reason, raw))
        return result
    good: list[AnyEvent] = []
    good_raws: list[bytes] = []
    good_positions: list[int] = []
    for index, event_raw in enumerate(envelope.events):
        event_bytes = bytes(event_raw)
        try:
            good.append(_event_decoder.decode(event_bytes))
            good_raws.append(event_bytes)
            good_positions.append(index)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as error:
            where = f"$.events[{index}]"
            reason = str(error).replace("at `$", f"at `{where}", 1)
            if "at `" not in reason:
                reason = f"{reason} - at `{where}`"
            result.rejections.append(
                Rejection(RejectionCode.INVALID, f"invalid event: {reason}", event_bytes, index)
            )
    # Payload checks, keeping the original index of each good event.
    kept = Validated()
    _split(good, kept, good_raws, good_positions, received_at_ns)
    kept.rejections[:0] = result.rejections
    return kept


def event_bytes(raw_batch: bytes, index: int) -> bytes:
    """The bytes of event ``index`` exactly as sent in ``raw_batch`` (a batch that decoded)."""
    return bytes(_raw_events_decoder.decode(raw_batch).events[index])
