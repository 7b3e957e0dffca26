"""Field types the configuration shares: durations and matchers, validated where they are read."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import PlainSerializer, PlainValidator

from ._matchers import Matcher, MatcherError, parse_matcher

_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w)")
_UNIT_NS = {
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
    "w": 604_800_000_000_000,
}


def parse_duration_ns(value: Any) -> int:
    """`30s`, `5m`, `4h`, `1d`, `1h30m` (Prometheus style) or a number of seconds, as ns."""
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"duration {value!r} must not be negative")
        return round(value * 1_000_000_000)
    if not isinstance(value, str):
        raise ValueError(f"invalid duration {value!r}")
    text = value.strip()
    parts = list(_DURATION.finditer(text))
    if not text or "".join(p.group() for p in parts) != text:
        raise ValueError(f"invalid duration {value!r} (expected e.g. 30s, 5m, 4h, 1h30m)")
    return sum(int(p.group(1)) * _UNIT_NS[p.group(2)] for p in parts)


def format_duration_ns(value: int) -> str:
    for unit in ("w", "d", "h", "m", "s", "ms"):
        if value and value % _UNIT_NS[unit] == 0:
            return f"{value // _UNIT_NS[unit]}{unit}"
    return f"{value}ns" if value else "0s"


def _matcher(value: Any) -> Matcher:
    if isinstance(value, Matcher):
        return value
    if not isinstance(value, str):
        raise ValueError(f"a matcher is a string such as 'model=~\"fraud|churn\"', not {value!r}")
    try:
        return parse_matcher(value)
    except MatcherError as exc:
        raise ValueError(str(exc)) from None


DurationNs = Annotated[
    int, PlainValidator(parse_duration_ns), PlainSerializer(format_duration_ns, return_type=str)
]
"""A duration read from `5m` and kept as nanoseconds."""

MatcherField = Annotated[Matcher, PlainValidator(_matcher), PlainSerializer(str, return_type=str)]
"""One matcher, parsed from its text form."""
