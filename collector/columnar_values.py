"""The per-event values that a columnar (v2) batch does not carry, derived for the whole batch.

A v2 event's row needs its event id, its prediction id and its inputs' and outputs' JSON,
none of which the batch spells out per event (`contract.columnar_event_id` and
`columnar_prediction_id` define the ids). Each function here derives one of them for a
whole batch: in `_columnar`'s C calls when the module was built, else in the numpy and
C-level Python passes below, which give the same values (tests compare the two) at
about 3.7 times the cost (0.77 against 0.21 µs an event, batches of 3 inputs, 1 output).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np

from .contract import emitter_bits

try:
    from . import _columnar
except ImportError:  # built without a C compiler: the Python passes below do the same
    _columnar = None

__all__ = ["event_ids", "payloads", "prediction_ids"]

use_native = True
"""Whether the values come from `_columnar` when it was built (tests turn it off)."""
_encode = msgspec.json.encode
_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", np.uint8)
_MILLIS_SHIFTS = np.arange(44, -1, -4, dtype=np.int64)  # 12 hex digits of 48 bits
_SEQ_SHIFTS = np.arange(28, -1, -4, dtype=np.int64)  # 8 hex digits of 32 bits


def _native() -> Any:
    return _columnar if use_native else None


def event_ids(emitter_id: str, start_times_ns: Sequence[int], seqs: Sequence[int]) -> list[str]:
    """`contract.columnar_event_id` of every event of a v2 batch.

    Of an id's 32 hex digits only the first 12 (the start millisecond) and the last 8 (the
    sequence number) vary within a batch; the 12 between come from the emitter. Start
    times must fit int64 (the caller checks), sequence numbers are non-negative int64."""
    bits = emitter_bits(emitter_id)
    middle = f"7{bits >> 30:03x}{0x8000_0000 | (bits & 0x3FFF_FFFF):08x}".encode()
    native = _native()
    if native is not None:
        ids = native.event_ids(middle, start_times_ns, seqs)
        if ids is not None:
            return ids
    # The digits as one uint8 array: 0.5 µs an event, against 1.3-1.8 for a format each.
    millis = (np.array(start_times_ns, np.int64) // 1_000_000) & ((1 << 48) - 1)
    low = np.array(seqs, np.int64) & 0xFFFF_FFFF
    digits = np.empty((len(seqs), 32), np.uint8)
    digits[:, :12] = _HEX_DIGITS[(millis[:, None] >> _MILLIS_SHIFTS) & 15]
    digits[:, 12:24] = np.frombuffer(middle, np.uint8)
    digits[:, 24:] = _HEX_DIGITS[(low[:, None] >> _SEQ_SHIFTS) & 15]
    return digits.view("S32").ravel().astype("U32").tolist()


def prediction_ids(emitter_id: str, refs: Sequence[int | str]) -> list[str]:
    """The prediction id of every event of a v2 batch: strings as given, numbers as
    `contract.columnar_prediction_id` writes them."""
    prefix = emitter_id[:12]
    native = _native()
    if native is not None:
        ids = native.prediction_ids(prefix, refs)
        if ids is not None:
            return ids
    written = (prefix.replace("%", "%%") + "-%x").__mod__
    if set(map(type, refs)) == {int}:
        return list(map(written, refs))
    return [ref if type(ref) is str else written(ref) for ref in refs]


def payloads(columns: dict[str, list[Any]] | None, count: int) -> list[bytes | None]:
    """Each event's `{"rows": [{feature: value}]}` JSON: the bytes that encoding that
    object would give, built without an object per event.

    Each column is encoded in one call; the features' names once per batch. `_columnar`
    then cuts each column at its items and lays them between the names. The Python pass
    makes a bytes template with one `%b` per feature and formats it once per event, a
    column without strings cut at its commas (a number, `true` or `null` holds none)."""
    if columns is None:
        return [None] * count
    keys = [_encode(name) for name in columns]
    native = _native()
    if native is not None:
        parts = [b"," + key + b":" for key in keys] + [b"}]}"]
        parts[0] = b'{"rows":[{' + parts[0].removeprefix(b",")
        encoded = list(map(_encode, columns.values()))
        built = native.payloads(parts, encoded, count)
        if built is not None:
            return built
    template = b'{"rows":[{' + b",".join(key.replace(b"%", b"%%") + b":%b" for key in keys) + b"}]}"
    if not columns:
        return [template] * count
    values = [
        list(map(_encode, column))
        if str in set(map(type, column))
        else _encode(column)[1:-1].split(b",")
        for column in columns.values()
    ]
    return list(map(template.__mod__, zip(*values, strict=True)))
