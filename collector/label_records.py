"""Plain label records (POST /v1/labels, the Kafka labels topic) turned into label events.

A record is ``{"model", "prediction_id", "label", "time_ns"?, "label_id"?}``. Each
becomes a contract label event whose ``event_id`` is derived from the record, so
that a resent record is a duplicate the store ignores (``ON CONFLICT DO NOTHING``):

- with ``label_id``: from (model, label_id), the client's own idempotency key;
- else with ``time_ns``: from (model, prediction_id, time_ns, label);
- else from (model, prediction_id, label), stamped with the time it first arrives.
  A retry stays one label, but a correction back to an earlier value then needs a
  ``time_ns`` or a ``label_id`` to be recorded as a new version.

Every event is stamped with the unsequenced emitter (`UNSEQUENCED_EMITTER_ID`, seq 0):
records have no sequence, so none can be counted as lost, and they add no delivery
range (10,000 records used to add 10,000 ranges, two statements each).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec

from .contract import (
    MAX_PAYLOAD_BYTES,
    SCHEMA_VERSION,
    UNSEQUENCED_EMITTER_ID,
    LabelValue,
    ModelName,
    ShortText,
    TimeNs,
)
from .pipeline import IngestPipeline, InputMessage, PreparedBatch
from .rejection import Rejection, RejectionCode

MAX_LABELS_PER_MESSAGE = 10_000
"""Records taken per POST /v1/labels body or per Kafka message."""
LABELS_EMITTER_ID = UNSEQUENCED_EMITTER_ID
"""The envelope's emitter, and each event's: records have no sequence to count gaps in."""

LabelId = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class LabelRecord(msgspec.Struct, frozen=True, gc=False):
    """One label as a client sends it; unknown fields are ignored."""

    model: ModelName
    prediction_id: ShortText
    label: LabelValue
    time_ns: TimeNs | None = None
    label_id: LabelId | None = None


class _Records(msgspec.Struct, frozen=True, gc=False):
    labels: list[msgspec.Raw]


class _Probe(msgspec.Struct, frozen=True, gc=False):
    """Which shape a Kafka record has: a contract batch, a records batch, or one record."""

    events: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)
    labels: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)
    """Empty when absent."""


_record_decoder = msgspec.json.Decoder(LabelRecord)
_records_decoder = msgspec.json.Decoder(_Records)
_probe_decoder = msgspec.json.Decoder(_Probe)
_any_decoder = msgspec.json.Decoder()
_encode = msgspec.json.encode


class LabelBodyError(ValueError):
    """The body or message as a whole is unusable; ``code`` picks the answer's status."""

    def __init__(self, code: RejectionCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(slots=True)
class LabelBatch:
    """The label events built from a list of records, and the records refused."""

    envelope: bytes
    """A contract batch (docs/event-contract.md) holding one label event per good record."""
    positions: list[int] = field(default_factory=list)
    """The record index of each event in ``envelope``."""
    rejections: list[Rejection] = field(default_factory=list)
    """One per refused record, ``event_index`` its index among the records."""


def label_event_id(record: LabelRecord) -> str:
    """The deterministic event id of a record (see the module docstring)."""
    if record.label_id is not None:
        parts: tuple[Any, ...] = ("id", record.model, record.label_id)
    else:
        canonical = _encode(_any_decoder.decode(record.label), order="sorted").decode()
        parts = ("value", record.model, record.prediction_id, record.time_ns, canonical)
    return hashlib.sha256(_encode(parts)).hexdigest()[:32]


def parse_label_body(body: bytes, *, max_items: int = MAX_LABELS_PER_MESSAGE) -> list[bytes]:
    """The raw records of a ``{"labels": [...]}`` body; raises ``LabelBodyError``."""
    try:
        records = _records_decoder.decode(body).labels
    except msgspec.ValidationError as error:
        raise LabelBodyError(RejectionCode.INVALID, f"invalid body: {error}") from error
    except (msgspec.DecodeError, UnicodeDecodeError, ValueError) as error:
        reason = f"body is not JSON: {error}"
        raise LabelBodyError(RejectionCode.UNDECODABLE, reason) from error
    _check_count(len(records), max_items)
    return [bytes(raw) for raw in records]


def _check_count(count: int, max_items: int) -> None:
    if count > max_items:
        reason = f"`labels` has {count} records, more than the {max_items} allowed per message"
        raise LabelBodyError(RejectionCode.TOO_LARGE, reason)


def labels_to_batch(records: Sequence[bytes], *, now_ns: int) -> LabelBatch:
    """Validate each raw record and build its label event; ``now_ns`` stands in for a
    missing ``time_ns``. Never raises on bad records: each becomes a rejection."""
    events = []
    batch = LabelBatch(envelope=b"")
    for index, raw in enumerate(records):
        try:
            record = _record_decoder.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as error:
            where = f"$.labels[{index}]"
            reason = str(error).replace("at `$", f"at `{where}", 1)
            if "at `" not in reason:
                reason = f"{reason} - at `{where}`"
            batch.rejections.append(Rejection(RejectionCode.INVALID, reason, raw, index))
            continue
        if len(record.label) > MAX_PAYLOAD_BYTES:
            reason = (
                f"`label` is {len(record.label)} bytes, more than the {MAX_PAYLOAD_BYTES}"
                f" allowed - at `$.labels[{index}]`"
            )
            batch.rejections.append(Rejection(RejectionCode.INVALID, reason, raw, index))
            continue
        event_id = label_event_id(record)
        events.append(
            {
                "schema_version": SCHEMA_VERSION,
                "kind": "label",
                "event_id": event_id,
                "emitter_id": LABELS_EMITTER_ID,
                "seq": 0,
                "prediction_id": record.prediction_id,
                "model": record.model,
                "time_ns": now_ns if record.time_ns is None else record.time_ns,
                "label": record.label,
            }
        )
        batch.positions.append(index)
    batch.envelope = _encode(
        {"schema_version": SCHEMA_VERSION, "emitter_id": LABELS_EMITTER_ID, "events": events}
    )
    return batch


def label_message_to_batch(
    value: bytes, *, now_ns: int, max_items: int = MAX_LABELS_PER_MESSAGE
) -> LabelBatch | None:
    """A labels-topic record as a batch: one record, ``{"labels": [...]}``, or None for a
    contract batch (``{"events": [...]}``), which the pipeline takes as it is.

    Raises ``LabelBodyError`` when the value is not JSON or not one of those shapes.
    """
    try:
        probe = _probe_decoder.decode(value)
    except msgspec.ValidationError as error:
        reason = f"a label record must be a JSON object: {error}"
        raise LabelBodyError(RejectionCode.INVALID, reason) from error
    except (msgspec.DecodeError, UnicodeDecodeError, ValueError) as error:
        raise LabelBodyError(RejectionCode.UNDECODABLE, f"not JSON: {error}") from error
    if len(probe.events):
        return None
    if not len(probe.labels):
        return labels_to_batch([value], now_ns=now_ns)
    return labels_to_batch(parse_label_body(value, max_items=max_items), now_ns=now_ns)


def prepare_with_labels(
    pipeline: IngestPipeline,
    messages: Sequence[InputMessage],
    *,
    labels_topic: str,
    source: str,
    now_ns: int,
) -> PreparedBatch:
    """``pipeline.prepare`` for messages of which those from ``labels_topic`` hold label
    records: they are converted first, and their refused records (or the whole message)
    join the batch's rejections, dead-lettered in the same transaction as the rest."""
    converted: list[InputMessage] = []
    refused: list[tuple[InputMessage, Rejection]] = []
    for message in messages:
        if message.topic != labels_topic or message.value is None:
            converted.append(message)
            continue
        try:
            batch = label_message_to_batch(message.value, now_ns=now_ns)
        except LabelBodyError as error:
            refused.append((message, Rejection(error.code, error.reason, message.value)))
            continue
        if batch is None:
            converted.append(message)
            continue
        refused.extend((message, rejection) for rejection in batch.rejections)
        if batch.positions:
            converted.append(
                InputMessage(batch.envelope, message.topic, message.partition, message.offset)
            )
    prepared = pipeline.prepare(converted, source=source)
    prepared.message_count = len(messages)
    for message, rejection in refused:
        prepared.reject(message, rejection)
    return prepared
