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
from itertools import repeat
from typing import Annotated, Any, Literal

import msgspec

from inferloop.grains import minute_of_ns

from .columnar_values import event_ids, payloads, prediction_ids
from .contract import (
    COLUMNAR_SCHEMA_VERSION,
    EVENT_ARRAYS,
    MAX_PAYLOAD_BYTES,
    AnyEvent,
    Batch,
    ColumnarBatch,
    Dropped,
    EmitterId,
    InferenceEvent,
    LabelEvent,
    ModelName,
    ShortText,
    TimeNs,
    columnar_event_id,
    columnar_prediction_id,
    emitter_bits,
)
from .rejection import Rejection, RejectionCode


class _Envelope(msgspec.Struct, frozen=True, gc=False):
    """The batch with events left undecoded, for the per-event slow path."""

    schema_version: Literal[1]
    emitter_id: EmitterId
    events: list[msgspec.Raw]


class _RawEvents(msgspec.Struct, frozen=True, gc=False):
    events: list[msgspec.Raw]


class _LooseColumnar(msgspec.Struct, frozen=True, gc=False):
    """A v2 batch with its per-event arrays left unchecked, for the per-event slow path."""

    schema_version: Literal[2]
    emitter_id: EmitterId
    model: ModelName
    version: ShortText
    environment: ShortText
    device: Annotated[str, msgspec.Meta(max_length=64)]
    start_base_ns: TimeNs
    seq: list[Any]
    start_ns: list[Any]
    latency_ns: list[Any]
    prediction_id: list[Any]
    tags: dict[str, str] = {}
    inputs: dict[str, list[Any]] | None = None
    outputs: dict[str, list[Any]] | None = None
    dropped: Dropped | None = None


class _Version(msgspec.Struct, gc=False):
    schema_version: Any = None


_batch_decoder = msgspec.json.Decoder(Batch)
_columnar_decoder = msgspec.json.Decoder(ColumnarBatch)
_loose_columnar_decoder = msgspec.json.Decoder(_LooseColumnar)
_version_decoder = msgspec.json.Decoder(_Version)
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
        pass
    else:
        _split(batch.events, result, None, list(range(len(batch.events))), received_at_ns)
        return result
    try:
        columnar = _columnar_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
        pass
    else:
        if _columnar_rows(columnar, result, received_at_ns):
            return result
        return _validate_columnar_slowly(raw, received_at_ns)
    try:
        version = _version_decoder.decode(raw).schema_version
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
        version = None
    if version == COLUMNAR_SCHEMA_VERSION:
        return _validate_columnar_slowly(raw, received_at_ns)
    return _validate_slowly(raw, received_at_ns)


# ---------------------------------------------------------------------- contract v2
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_SCALARS = (str, int, float, bool, type(None))


def _columnar_rows(batch: ColumnarBatch, into: Validated, received_at_ns: int) -> bool:
    """A v2 batch straight into ``events`` rows; False when some event needs the slow path
    (arrays of unequal length, a start time out of range, a payload over its limit)."""
    count = len(batch.seq)
    arrays = [batch.start_ns, batch.latency_ns, batch.prediction_id]
    for columns in (batch.inputs, batch.outputs):
        if columns:
            arrays.extend(columns.values())
    if any(len(array) != count for array in arrays):
        return False
    if count == 0:
        return True
    base = batch.start_base_ns
    starts = [base + start for start in batch.start_ns]
    if min(starts) < _INT64_MIN or max(starts) > _INT64_MAX:
        return False
    inputs = payloads(batch.inputs, count)
    outputs = payloads(batch.outputs, count)
    limit = MAX_PAYLOAD_BYTES
    if (batch.inputs and max(map(len, inputs)) > limit) or (  # type: ignore[arg-type]
        batch.outputs and max(map(len, outputs)) > limit  # type: ignore[arg-type]
    ):
        return False
    emitter = batch.emitter_id
    ids = event_ids(emitter, starts, batch.seq)
    predictions = prediction_ids(emitter, batch.prediction_id)
    # One C-level zip builds every row (EVENT_COLUMNS order); constants repeat.
    into.rows.extend(
        zip(
            ids,
            repeat(emitter),
            batch.seq,
            repeat(batch.model),
            repeat(batch.version),
            repeat(batch.environment),
            starts,
            batch.latency_ns,
            repeat(None),
            repeat("ok"),
            repeat(None),
            repeat(None),
            repeat(1),
            repeat(batch.device),
            inputs,
            outputs,
            predictions,
            repeat(_encode(batch.tags)),
            repeat(received_at_ns),
        )
    )
    into.row_positions.extend(range(count))
    if batch.dropped:
        into.drops.append(DropReport(ids[0], batch.model, minute_of_ns(starts[0]), batch.dropped))
    return True


def columnar_event(batch: Any, index: int) -> dict[str, Any]:
    """Event ``index`` of a (loosely decoded) v2 batch in the v1 layout, as it is stored."""
    emitter = batch.emitter_id
    seq = batch.seq[index]
    start = batch.start_ns[index]
    start_time = batch.start_base_ns + start if type(start) is int else start
    prediction = batch.prediction_id[index]
    event_id = (
        columnar_event_id(emitter_bits(emitter), start_time, seq)
        if type(seq) is int and type(start_time) is int and seq >= 0
        else "0" * 32
    )
    event = {
        "schema_version": 1,
        "kind": "inference",
        "event_id": event_id,
        "emitter_id": emitter,
        "seq": seq,
        "model": batch.model,
        "version": batch.version,
        "environment": batch.environment,
        "start_time_ns": start_time,
        "latency_ns": batch.latency_ns[index],
        "status": "ok",
        "batch_size": 1,
        "device": batch.device,
        "inputs": _row(batch.inputs, index),
        "outputs": _row(batch.outputs, index),
        "prediction_id": (
            columnar_prediction_id(emitter, prediction)
            if type(prediction) is int and prediction >= 0
            else prediction
        ),
        "tags": batch.tags,
    }
    if index == 0 and batch.dropped:
        event["dropped"] = batch.dropped
    return event


def _row(columns: dict[str, list[Any]] | None, index: int) -> dict[str, Any] | None:
    if columns is None:
        return None
    return {"rows": [{name: column[index] for name, column in columns.items()}]}


def _column_problem(batch: _LooseColumnar, index: int) -> str | None:
    """What the v1 event rules cannot see in event ``index`` of a v2 batch."""
    start = batch.start_ns[index]
    if type(start) is not int or not _INT64_MIN <= start <= _INT64_MAX:
        return f"Expected `int` of 64 bits - at `$.start_ns[{index}]`"
    prediction = batch.prediction_id[index]
    if type(prediction) is int and not 0 <= prediction <= _INT64_MAX:
        return f"Expected `int` >= 0 - at `$.prediction_id[{index}]`"
    for field_name, columns in (("inputs", batch.inputs), ("outputs", batch.outputs)):
        for name, column in (columns or {}).items():
            if not isinstance(column[index], _SCALARS):
                return f"Expected a scalar - at `$.{field_name}.{name}[{index}]`"
    return None


def _validate_columnar_slowly(raw: bytes, received_at_ns: int) -> Validated:
    """A v2 batch that failed the fast path: whole-batch problems refuse it all; otherwise
    each event is judged alone, by the v1 event rules, and refused alone."""
    result = Validated()
    try:
        batch = _loose_columnar_decoder.decode(raw)
    except UnicodeDecodeError as error:
        reason = f"not valid UTF-8: {error}"
        result.rejections.append(Rejection(RejectionCode.UNDECODABLE, reason, raw))
        return result
    except msgspec.ValidationError as error:
        reason = f"invalid batch (schema_version 2, columnar): {error}"
        result.rejections.append(Rejection(RejectionCode.INVALID, reason, raw))
        return result
    except (msgspec.DecodeError, ValueError) as error:
        reason = f"not decodable as JSON: {error}"
        result.rejections.append(Rejection(RejectionCode.UNDECODABLE, reason, raw))
        return result
    count = len(batch.seq)
    arrays = [batch.start_ns, batch.latency_ns, batch.prediction_id]
    for columns in (batch.inputs, batch.outputs):
        arrays.extend((columns or {}).values())
    if any(len(array) != count for array in arrays):
        reason = (
            f"invalid batch (schema_version 2, columnar): {EVENT_ARRAYS} must all hold"
            f" one item per event ({count}, the length of `seq`)"
        )
        result.rejections.append(Rejection(RejectionCode.INVALID, reason, raw))
        return result
    good: list[AnyEvent] = []
    good_raws: list[bytes] = []
    positions: list[int] = []
    for index in range(count):
        problem = _column_problem(batch, index)
        try:
            event_raw = _encode(columnar_event(batch, index))
        except (OverflowError, TypeError, ValueError) as error:  # a sum past 64 bits
            event_raw = b""
            problem = problem or f"{error} - at `$.start_ns[{index}]`"
        if problem is None:
            try:
                good.append(_event_decoder.decode(event_raw))
                good_raws.append(event_raw)
                positions.append(index)
                continue
            except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as error:
                problem = str(error)
                for name in ("seq", "latency_ns", "prediction_id", "start_time_ns"):
                    problem = problem.replace(
                        f"at `$.{name}`",
                        f"at `$.{'start_ns' if name == 'start_time_ns' else name}[{index}]`",
                    )
        result.rejections.append(
            Rejection(RejectionCode.INVALID, f"invalid event: {problem}", event_raw, index)
        )
    kept = Validated()
    _split(good, kept, good_raws, positions, received_at_ns)
    kept.rejections[:0] = result.rejections
    return kept


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
    """The bytes of event ``index`` exactly as sent in ``raw_batch`` (a batch that decoded);
    for a columnar (v2) batch, the event in the v1 layout, as it was stored."""
    try:
        return bytes(_raw_events_decoder.decode(raw_batch).events[index])
    except (msgspec.DecodeError, msgspec.ValidationError):
        return _encode(columnar_event(_loose_columnar_decoder.decode(raw_batch), index))
