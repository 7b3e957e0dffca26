"""Time grains: rollups, drop counts and delivery ranges are kept per minute.

One definition of "the minute an event belongs to", so that the collector that
writes a rollup, the routes and workers that read it, and the analyzer's
per-minute statistics always agree. It lives on the bottom floor because the
analyzer's pure statistics need it too and must not import the store.
"""

from __future__ import annotations

MINUTE_S = 60
"""Seconds in one rollup grain."""
MINUTE_NS = MINUTE_S * 1_000_000_000
"""Nanoseconds in one rollup grain."""


def minute_of_ns(time_ns: int) -> int:
    """Start, in Unix seconds, of the minute holding the instant `time_ns` (Unix ns)."""
    return time_ns // MINUTE_NS * MINUTE_S


def floor_to_minute_s(time_s: float) -> int:
    """`time_s` (Unix seconds) rounded down to the start of its minute."""
    return int(time_s // MINUTE_S) * MINUTE_S


def ceil_to_minute_s(time_s: float) -> int:
    """`time_s` (Unix seconds) rounded up to a minute boundary (itself if already on one)."""
    return -int(-time_s // MINUTE_S) * MINUTE_S
