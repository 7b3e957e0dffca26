"""Event contract v1 (docs/event-contract.md) as msgspec types, and batch validation.

The hot path decodes and validates a whole batch in one msgspec call (C speed,
no per-event Python). Only when that fails does the slow path decode the batch
generically and validate event by event, so that one bad event costs its own
dead letter and not its neighbours'.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import msgspec

SCHEMA_VERSION = 1
MAX_PAYLOAD_BYTES = 256 * 1024
"""Largest ``inputs``/``outputs``/``label`` JSON accepted per event."""

# Every struct here is ``gc=False``: decoded events hold only strings, numbers,
# raw JSON and flat dicts of them, so they can never be part of a reference
# cycle, and leaving them out of the cyclic garbage collector's tracking saves
# it from walking tens of thousands of live events per batch (measured ~1 us
# per event of collector CPU).
EventId = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{32}$")]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]
ShortText = Annotated[str, msgspec.Meta(max_length=200)]
ModelName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
EmitterId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
NULL_JSON = msgspec.Raw(b"null")


class InferenceEvent(msgspec.Struct, tag_field="kind", tag="inference", frozen=True, gc=False):
    """One model call. ``inputs``/``outputs`` stay raw JSON: they are stored as-is."""

    schema_version: Literal[1]
    event_id: EventId
    emitter_id: EmitterId
    seq: NonNegative
    model: ModelName
    version: ShortText
    environment: ShortText
    start_time_ns: int
    latency_ns: NonNegative
    status: Literal["ok", "error"]
    batch_size: NonNegative
    device: Annotated[str, msgspec.Meta(max_length=64)]
    prediction_id: ShortText
    device_time_ns: NonNegative | None = None
    error_type: ShortText | None = None
    error_message: str | None = None
    inputs: msgspec.Raw = NULL_JSON
    outputs: msgspec.Raw = NULL_JSON
    tags: dict[str, str] = {}
    dropped: dict[str, NonNegative] | None = None


class LabelEvent(msgspec.Struct, tag_field="kind", tag="label", frozen=True, gc=False):
    """Ground truth for an earlier prediction."""

    schema_version: Literal[1]
    event_id: EventId
    emitter_id: EmitterId
    seq: NonNegative
    prediction_id: ShortText
    model: ModelName
    time_ns: int
    label: msgspec.Raw = NULL_JSON


AnyEvent = InferenceEvent | LabelEvent


class Batch(msgspec.Struct, frozen=True, gc=False):
    schema_version: Literal[1]
    emitter_id: EmitterId
    events: list[AnyEvent]


class _Envelope(msgspec.Struct, frozen=True, gc=False):
    """The batch with events left undecoded, for the per-event slow path."""

    schema_version: Literal[1]
    emitter_id: EmitterId
    events: list[msgspec.Raw]


_batch_decoder = msgspec.json.Decoder(Batch)
_envelope_decoder = msgspec.json.Decoder(_Envelope)
_event_decoder = msgspec.json.Decoder(AnyEvent)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why some input was refused; ``event_index`` is -1 for the whole message."""

    reason: str
    raw: bytes
    event_index: int = -1
    undecodable: bool = False
    """True when the bytes were not a JSON document at all (vs. JSON that broke the contract)."""


@dataclass(slots=True)
class Validated:
    """The outcome of validating one message: good events, and what was refused."""

    inferences: list[InferenceEvent] = field(default_factory=list)
    labels: list[LabelEvent] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    inference_rows: list[tuple] = field(default_factory=list)
    """One ``events`` row per kept inference, columns in EVENT_COLUMNS order; the JSON
    columns (JSON_COLUMNS) hold UTF-8 ``bytes`` (or None), not ``str``."""
    inference_positions: list[int] = field(default_factory=list)
    label_positions: list[int] = field(default_factory=list)
    """Index in the batch of each kept event, for dead letters raised later by the store."""


EVENT_COLUMNS = (
    "event_id",
    "emitter_id",
    "seq",
    "model",
    "version",
    "environment",
    "start_time_ns",
    "latency_ns",
    "device_time_ns",
    "status",
    "error_type",
    "error_message",
    "batch_size",
    "device",
    "inputs",
    "outputs",
    "prediction_id",
    "tags",
    "received_at_ns",
)
"""Column order of the rows built for the ``events`` table (see ``Validated.inference_rows``)."""
JSON_COLUMNS = tuple(EVENT_COLUMNS.index(name) for name in ("inputs", "outputs", "tags"))
"""Positions in EVENT_COLUMNS of the columns that rows carry as JSON bytes."""

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
    rows = into.inference_rows
    for position, (index, event) in enumerate(zip(positions, events, strict=True)):
        problem = None
        if type(event) is InferenceEvent:
            inputs = bytes(event.inputs)
            outputs = bytes(event.outputs)
            if inputs[0] not in _OBJECT_OR_NULL:
                problem = "`inputs` must be an object or null"
            elif outputs[0] not in _OBJECT_OR_NULL:
                problem = "`outputs` must be an object or null"
            elif len(inputs) > limit or len(outputs) > limit:
                name, size = (
                    ("inputs", len(inputs)) if len(inputs) > limit else ("outputs", len(outputs))
                )
                problem = f"`{name}` is {size} bytes, more than the {limit} allowed"
            else:
                into.inferences.append(event)
                into.inference_positions.append(index)
                # JSON columns stay bytes: PostgreSQL's binary COPY takes the
                # UTF-8 text as is (no decode here, no encode in psycopg);
                # the SQLite writer decodes them itself.
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
                        None if inputs == b"null" else inputs,
                        None if outputs == b"null" else outputs,
                        event.prediction_id,
                        _encode(event.tags),
                        received_at_ns,
                    )
                )
                continue
        elif len(event.label) > limit:
            problem = f"`label` is {len(event.label)} bytes, more than the {limit} allowed"
        else:
            into.labels.append(event)
            into.label_positions.append(index)
            continue
        raw = raws[position] if raws is not None else _encode(event)
        into.rejections.append(Rejection(f"{problem} - at `$.events[{index}]`", raw, index))


def validate_batch(
    raw: bytes, *, max_bytes: int | None = None, received_at_ns: int = 0
) -> Validated:
    """Decode and validate one batch message; never raises on bad input."""
    result = Validated()
    if max_bytes is not None and len(raw) > max_bytes:
        result.rejections.append(
            Rejection(f"message is {len(raw)} bytes, more than the {max_bytes} allowed", raw)
        )
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
        result.rejections.append(Rejection(f"not valid UTF-8: {error}", raw, undecodable=True))
        return result
    except msgspec.ValidationError as error:
        result.rejections.append(Rejection(f"invalid batch: {error}", raw))
        return result
    except (msgspec.DecodeError, ValueError) as error:
        result.rejections.append(
            Rejection(f"not decodable as JSON: {error}", raw, undecodable=True)
        )
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
            result.rejections.append(Rejection(f"invalid event: {reason}", event_bytes, index))
    # Payload checks, keeping the original index of each good event.
    kept = Validated()
    _split(good, kept, good_raws, good_positions, received_at_ns)
    kept.rejections[:0] = result.rejections
    return kept


def rejection_summary(rejections: list[Rejection]) -> list[dict[str, Any]]:
    """JSON-able description of rejections, for API error bodies and logs."""
    return [{"event_index": r.event_index, "reason": r.reason} for r in rejections]
