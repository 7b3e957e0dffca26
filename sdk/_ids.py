"""Identifiers: emitter ids, time-ordered event ids (UUIDv7 layout), cheap prediction ids."""

from __future__ import annotations

import os


def new_emitter_id() -> str:
    """A random 128-bit id; a forked child gets a new one so its sequence starts afresh."""
    return os.urandom(16).hex()


class EventIdFactory:
    """UUIDv7-layout ids from the event's time, a per-emitter random part and its sequence.

    Unique per emitter because the sequence is; across emitters because of 42 random bits
    and the millisecond. No urandom call per event, which keeps the worker fast.
    """

    __slots__ = ("_random_high",)

    def __init__(self) -> None:
        self._random_high = int.from_bytes(os.urandom(6), "big") & ((1 << 42) - 1)

    def make(self, unix_ns: int, seq: int) -> str:
        return f"{self.value(unix_ns, seq):032x}"

    def value(self, unix_ns: int, seq: int) -> int:
        """The id as a 128-bit integer (the worker formats it straight into the event's JSON)."""
        millis = (unix_ns // 1_000_000) & ((1 << 48) - 1)
        tail = (self._random_high << 32) | (seq & 0xFFFF_FFFF)  # 74 bits
        rand_a = tail >> 62  # 12 bits
        rand_b = tail & ((1 << 62) - 1)
        return (millis << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b


def prediction_prefix(emitter_id: str) -> str:
    """The part of an emitter's id that starts each of its generated prediction ids."""
    return emitter_id[:12]


def prediction_id(prefix: str, number: int) -> str:
    """The prediction id of the number-th monitored call of an emitter: `<prefix>-<hex>`.

    The one definition of the format. The worker's JSON template for its fastest case
    (`_events._SCALAR_EVENT`) writes the same with `%s-%x`; a test keeps the two equal.
    """
    return f"{prefix}-{number:x}"
