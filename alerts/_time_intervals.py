"""Named time intervals (weekdays and times of day, in UTC) during which a route is muted.

A subset of Alertmanager's `time_intervals`: `weekdays` (`monday`, ranges such as
`monday:friday`) and `times` (`start_time`/`end_time` as `HH:MM`, end exclusive,
`24:00` allowed). An interval with neither matches all the time. `mute_end_ns`
finds when a mute is over, so the engine knows when to send what waited.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MINUTE_NS = 60 * 1_000_000_000
_DAY_NS = 24 * 60 * _MINUTE_NS
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (monday = 0)


def _minutes(text: str) -> int:
    hours, sep, minutes = text.partition(":")
    if not sep or not hours.isdigit() or not minutes.isdigit() or len(minutes) != 2:
        raise ValueError(f"time {text!r} must be HH:MM")
    value = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or value > 24 * 60:
        raise ValueError(f"time {text!r} is not between 00:00 and 24:00")
    return value


class TimeRange(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    start_time: str
    end_time: str

    @model_validator(mode="after")
    def _ordered(self) -> TimeRange:
        if _minutes(self.start_time) >= _minutes(self.end_time):
            raise ValueError(
                f"start_time {self.start_time} must be before end_time {self.end_time}"
            )
        return self

    @property
    def minutes(self) -> tuple[int, int]:
        return _minutes(self.start_time), _minutes(self.end_time)


class TimePeriod(BaseModel):
    """One entry of an interval: its weekdays and its times of day (both must hold)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weekdays: tuple[str, ...] = ()
    times: tuple[TimeRange, ...] = ()

    @field_validator("weekdays")
    @classmethod
    def _known_weekdays(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            for day in item.split(":"):
                if day.strip().lower() not in _WEEKDAYS:
                    raise ValueError(f"unknown weekday {day!r} (expected e.g. monday:friday)")
            if item.count(":") > 1:
                raise ValueError(f"weekday range {item!r} must be first:last")
        return value

    def day_set(self) -> frozenset[int]:
        if not self.weekdays:
            return frozenset(range(7))
        days: set[int] = set()
        for item in self.weekdays:
            first, _, last = item.partition(":")
            a = _WEEKDAYS.index(first.strip().lower())
            b = _WEEKDAYS.index((last or first).strip().lower())
            days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
        return frozenset(days)

    def contains(self, now_ns: int) -> bool:
        weekday = (now_ns // _DAY_NS + _EPOCH_WEEKDAY) % 7
        if weekday not in self.day_set():
            return False
        if not self.times:
            return True
        minute = (now_ns % _DAY_NS) // _MINUTE_NS
        return any(start <= minute < end for start, end in (t.minutes for t in self.times))

    def boundaries_of_day(self, day_start_ns: int) -> list[int]:
        """Instants within one UTC day at which `contains` may change."""
        points = [day_start_ns]
        for t in self.times:
            start, end = t.minutes
            points += [day_start_ns + start * _MINUTE_NS, day_start_ns + end * _MINUTE_NS]
        return points


class TimeInterval(BaseModel):
    """A named list of periods; the interval holds when any of its periods does."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    time_intervals: tuple[TimePeriod, ...] = ()

    def contains(self, now_ns: int) -> bool:
        return any(p.contains(now_ns) for p in self.time_intervals)


def muted(intervals: Iterable[TimeInterval], now_ns: int) -> bool:
    return any(i.contains(now_ns) for i in intervals)


def mute_end_ns(intervals: Iterable[TimeInterval], now_ns: int) -> int | None:
    """The first instant at or after `now_ns` outside every interval; None if never (within 8 days).

    Containment can only change at midnight or at a period's start/end time, so it
    is enough to try those instants in order.
    """
    intervals = tuple(intervals)
    if not muted(intervals, now_ns):
        return now_ns
    day = now_ns - now_ns % _DAY_NS
    candidates: set[int] = set()
    for offset in range(9):
        day_start = day + offset * _DAY_NS
        for interval in intervals:
            for period in interval.time_intervals:
                candidates.update(period.boundaries_of_day(day_start))
    for point in sorted(c for c in candidates if c > now_ns):
        if not muted(intervals, point):
            return point
    return None
