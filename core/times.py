"""Times as users type them, for the CLI and the API alike: one parser, one error message."""

from __future__ import annotations

from datetime import UTC, datetime

NS = 1_000_000_000


def parse_time_ns(text: str) -> int:
    """Unix seconds (`1700000000.5`) or ISO 8601 (`2026-12-01T10:00:00Z`; UTC unless it
    says otherwise) → Unix nanoseconds. ValueError names both forms."""
    try:
        return round(float(text) * NS)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: give Unix seconds or ISO 8601 (2026-12-01T10:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    whole = moment.replace(microsecond=0)
    return int(whole.timestamp()) * NS + moment.microsecond * 1000


def format_time_ns(time_ns: int) -> str:
    """Unix nanoseconds as `2026-12-01 10:00:00 UTC`, for people to read."""
    return datetime.fromtimestamp(time_ns / NS, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def ms_of_ns(value_ns: float | None) -> float | None:
    """Nanoseconds (as the store keeps durations) in milliseconds (as people read them);
    None, for a figure with no value, stays None."""
    return None if value_ns is None else value_ns / 1e6
