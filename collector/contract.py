"""Event contract v1 and v2 (docs/event-contract.md): the one definition of the wire format.

These msgspec types are what the collector validates with, and the published
JSON Schemas (``sdk/schema/batch-v1.json``, ``batch-v2.json``) are generated from them
(``python -m inferloop.collector.contract_schema``), so the two cannot drift
apart. Every constraint is a ``msgspec.Meta`` annotation: msgspec checks it in C
while decoding, and the schema generator writes it as the matching keyword.
Two rules JSON Schema cannot state are checked in ``validation.py`` and named
in the schema's descriptions: a payload's size in bytes, and a message's.

Unknown fields are ignored (a reader that tolerates additions lets producers
move first), so the schema allows additional properties too.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal

import msgspec

SCHEMA_VERSION = 1
COLUMNAR_SCHEMA_VERSION = 2
MAX_PAYLOAD_BYTES = 256 * 1024
"""Largest ``inputs``/``outputs``/``label`` JSON accepted per event."""
MAX_ERROR_MESSAGE_CHARS = 1000
"""``error_message`` length the SDK truncates to, and the most the contract accepts."""
INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1

# The bounds follow the store's columns (BIGINT, INTEGER, VARCHAR(n)): what
# validates here is what the database can hold.
EventId = Annotated[
    str,
    msgspec.Meta(
        pattern="^[0-9a-f]{32}$",
        description="Time-ordered (UUIDv7 layout), unique: the store's idempotency key.",
    ),
]
Count = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
Int32Count = Annotated[int, msgspec.Meta(ge=0, le=INT32_MAX)]
TimeNs = Annotated[
    int, msgspec.Meta(ge=-INT64_MAX - 1, le=INT64_MAX, description="Unix epoch nanoseconds.")
]
ShortText = Annotated[str, msgspec.Meta(max_length=200)]
ModelName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
UNSEQUENCED_EMITTER_ID = "inferloop-labels"
"""The emitter of label records sent by other systems (POST /v1/labels, the labels topic):
they carry no sequence numbers, so they count in no delivery range."""
EmitterId = Annotated[
    str,
    msgspec.Meta(
        min_length=1, max_length=64, description="The producing SDK instance (new after fork)."
    ),
]
Seq = Annotated[
    int,
    msgspec.Meta(
        ge=0,
        le=INT64_MAX,
        description="Per-emitter sequence number, contiguous from 0: gaps are lost events.",
    ),
]
Payload = Annotated[
    msgspec.Raw,
    msgspec.Meta(
        extra_json_schema={"type": ["object", "null"]},
        description=(
            "Summarised inputs or outputs: {'rows': [...]} or {'summary': {...}}, optionally"
            f" 'truncated': true (docs/event-contract.md). At most {MAX_PAYLOAD_BYTES} bytes"
            " of JSON: checked by the collector, not expressible in JSON Schema."
        ),
    ),
]
LabelValue = Annotated[
    msgspec.Raw,
    msgspec.Meta(
        description=f"Any JSON value, at most {MAX_PAYLOAD_BYTES} bytes (checked by the collector)."
    ),
]
Dropped = Annotated[
    dict[str, Count],
    msgspec.Meta(
        description=(
            "SDK-side drops since the previous batch, by reason (queue_full, buffer_full,"
            " send_failed, internal_error, shutdown); rides on the first event of a batch."
        )
    ),
]

NULL_JSON = msgspec.Raw(b"null")


def _null_json() -> msgspec.Raw:
    # A factory, not a default value: the schema generator cannot write a Raw default.
    return NULL_JSON


# Every struct here is ``gc=False``: decoded events hold only strings, numbers,
# raw JSON and flat dicts of them, so they can never be part of a reference
# cycle, and leaving them out of the cyclic garbage collector's tracking saves
# it from walking tens of thousands of live events per batch (measured ~1 us
# per event of collector CPU).


class InferenceEvent(msgspec.Struct, tag_field="kind", tag="inference", frozen=True, gc=False):
    """One model call. ``inputs``/``outputs`` stay raw JSON: they are stored as-is."""

    schema_version: Literal[1]
    event_id: EventId
    emitter_id: EmitterId
    seq: Seq
    model: ModelName
    version: ShortText
    environment: ShortText
    start_time_ns: TimeNs
    latency_ns: Count
    status: Literal["ok", "error"]
    batch_size: Int32Count
    device: Annotated[str, msgspec.Meta(max_length=64)]
    prediction_id: ShortText
    device_time_ns: Count | None = None
    error_type: ShortText | None = None
    error_message: Annotated[str, msgspec.Meta(max_length=MAX_ERROR_MESSAGE_CHARS)] | None = None
    inputs: Payload = msgspec.field(default_factory=_null_json)
    outputs: Payload = msgspec.field(default_factory=_null_json)
    tags: dict[str, str] = {}
    dropped: Dropped | None = None


class LabelEvent(msgspec.Struct, tag_field="kind", tag="label", frozen=True, gc=False):
    """Ground truth for an earlier prediction."""

    schema_version: Literal[1]
    event_id: EventId
    emitter_id: EmitterId
    seq: Seq
    prediction_id: ShortText
    model: ModelName
    time_ns: TimeNs
    label: LabelValue = msgspec.field(default_factory=_null_json)
    dropped: Dropped | None = None


AnyEvent = InferenceEvent | LabelEvent


class Batch(msgspec.Struct, frozen=True, gc=False):
    """One Kafka message value or one POST /v1/events body: the events of one model."""

    schema_version: Literal[1]
    emitter_id: EmitterId
    events: list[AnyEvent]


Scalar = str | int | float | bool | None
FeatureColumns = Annotated[
    dict[str, list[Scalar]],
    msgspec.Meta(
        description=(
            "One array per feature, value i belonging to event i: event i's payload is"
            " {'rows': [{feature: value_i, ...}]}. At most"
            f" {MAX_PAYLOAD_BYTES} bytes of JSON per event (checked by the collector)."
        )
    ),
]
PredictionRef = (
    Annotated[str, msgspec.Meta(max_length=200)] | Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]
)
EVENT_ARRAYS = "seq, start_ns, latency_ns, prediction_id and every inputs/outputs column"


class ColumnarBatch(msgspec.Struct, frozen=True, gc=False):
    """Contract v2: calls of one model version as columns (one array per field).

    Every event of it is an ``ok`` inference of batch size 1 with no device time. Its
    event id is derived from (emitter_id, seq, start time) as docs/event-contract.md
    says; its start time is ``start_base_ns + start_ns[i]``; an integer prediction id
    ``n`` stands for ``<first 12 characters of emitter_id>-<n in lowercase hex>``.
    """

    schema_version: Literal[2]
    emitter_id: EmitterId
    model: ModelName
    version: ShortText
    environment: ShortText
    device: Annotated[str, msgspec.Meta(max_length=64)]
    start_base_ns: TimeNs
    seq: list[Seq]
    start_ns: list[TimeNs]
    latency_ns: list[Count]
    prediction_id: list[PredictionRef]
    tags: dict[str, str] = {}
    inputs: FeatureColumns | None = None
    outputs: FeatureColumns | None = None
    dropped: Dropped | None = None


_EMITTER_BITS = (1 << 42) - 1


def emitter_bits(emitter_id: str) -> int:
    """The 42 bits that stand for the emitter in its derived (v2) event ids."""
    digest = hashlib.blake2b(emitter_id.encode(), digest_size=6).digest()
    return int.from_bytes(digest, "big") & _EMITTER_BITS


def columnar_event_id(bits: int, start_time_ns: int, seq: int) -> str:
    """The event id of a v2 event: UUIDv7 layout from its start millisecond, the emitter's
    42 bits (``emitter_bits``) and the low 32 bits of its sequence number."""
    millis = (start_time_ns // 1_000_000) & ((1 << 48) - 1)
    tail = (bits << 32) | (seq & 0xFFFF_FFFF)
    value = (millis << 80) | (0x7 << 76) | ((tail >> 62) << 64) | (0b10 << 62)
    return f"{value | (tail & ((1 << 62) - 1)):032x}"


def columnar_prediction_id(emitter_id: str, number: int) -> str:
    """What an integer prediction id of a v2 batch stands for."""
    return f"{emitter_id[:12]}-{number:x}"


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
"""Column order of the rows built for the ``events`` table (see ``Validated.rows``)."""
JSON_COLUMNS = tuple(EVENT_COLUMNS.index(name) for name in ("inputs", "outputs", "tags"))
"""Positions in EVENT_COLUMNS of the columns that rows carry as JSON bytes."""
