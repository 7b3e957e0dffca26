"""The engine's state as plain values, and the events that change it.

Everything here turns into JSON-able dicts and back (`to_dict`/`from_dict`), so
the dispatcher can keep it in SQL and two processes can share it. The state has
three separable parts: the alerts (one record per firing episode), the silences,
and one `GroupState` per (route, group key, receiver), each of which can be a row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ._model import Alert
from ._silences import Silence

STATE_VERSION = 1


def alert_to_dict(alert: Alert) -> dict[str, Any]:
    return {
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "starts_at_ns": alert.starts_at_ns,
        "ends_at_ns": alert.ends_at_ns,
    }


def alert_from_dict(data: Mapping[str, Any]) -> Alert:
    ends = data.get("ends_at_ns")
    return Alert(
        labels=dict(data["labels"]),
        annotations=dict(data.get("annotations") or {}),
        starts_at_ns=int(data.get("starts_at_ns") or 0),
        ends_at_ns=None if ends is None else int(ends),
    )


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """One firing episode of an alert: fired → (resolved). A re-fire is a new episode."""

    alert: Alert
    episode: int

    @property
    def key(self) -> str:
        return episode_key(self.alert.fingerprint, self.episode)

    @property
    def firing(self) -> bool:
        return self.alert.ends_at_ns is None

    def to_dict(self) -> dict[str, Any]:
        return {"alert": alert_to_dict(self.alert), "episode": self.episode}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlertRecord:
        return cls(alert_from_dict(data["alert"]), int(data["episode"]))


def episode_key(fingerprint: str, episode: int) -> str:
    return f"{fingerprint}/{episode}"


GroupId = tuple[str, str, str]
"""(route id, group key, receiver): the primary key of a group's row."""


@dataclass(frozen=True, slots=True)
class GroupState:
    """What one receiver has been told about one group, and when it must be told next."""

    route_id: str
    group_key: str
    receiver: str
    group_labels: dict[str, str]
    created_at_ns: int
    """When this incarnation of the group began; part of every notification id."""
    seq: int = 0
    """Notifications emitted so far; the next one is `seq + 1`."""
    last_sent_ns: int | None = None
    pending_since_ns: int | None = None
    """Since when there has been something new to say."""
    next_flush_ns: int | None = None
    """When the group must next be looked at (a send, a repeat, the end of a mute)."""
    notified: tuple[str, ...] = ()
    """Episode keys the receiver was last told are firing."""
    owed: tuple[str, ...] = ()
    """Episodes seen firing while not muted that no notification has reported yet."""

    @property
    def id(self) -> GroupId:
        return (self.route_id, self.group_key, self.receiver)

    def to_dict(self) -> dict[str, Any]:
        return {
            "route_id": self.route_id,
            "group_key": self.group_key,
            "receiver": self.receiver,
            "group_labels": dict(self.group_labels),
            "created_at_ns": self.created_at_ns,
            "seq": self.seq,
            "last_sent_ns": self.last_sent_ns,
            "pending_since_ns": self.pending_since_ns,
            "next_flush_ns": self.next_flush_ns,
            "notified": list(self.notified),
            "owed": list(self.owed),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GroupState:
        def opt(name: str) -> int | None:
            value = data.get(name)
            return None if value is None else int(value)

        return cls(
            route_id=data["route_id"],
            group_key=data["group_key"],
            receiver=data["receiver"],
            group_labels=dict(data["group_labels"]),
            created_at_ns=int(data["created_at_ns"]),
            seq=int(data.get("seq", 0)),
            last_sent_ns=opt("last_sent_ns"),
            pending_since_ns=opt("pending_since_ns"),
            next_flush_ns=opt("next_flush_ns"),
            notified=tuple(data.get("notified", ())),
            owed=tuple(data.get("owed", ())),
        )


@dataclass(frozen=True, slots=True)
class EngineState:
    alerts: dict[str, AlertRecord] = field(default_factory=dict)
    """By episode key (`fingerprint/episode`)."""
    silences: dict[str, Silence] = field(default_factory=dict)
    groups: dict[GroupId, GroupState] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "alerts": [self.alerts[k].to_dict() for k in sorted(self.alerts)],
            "silences": [self.silences[k].to_dict() for k in sorted(self.silences)],
            "groups": [self.groups[k].to_dict() for k in sorted(self.groups)],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EngineState:
        if data.get("version", STATE_VERSION) != STATE_VERSION:
            raise ValueError(f"alerting state version {data.get('version')} is not supported")
        records = [AlertRecord.from_dict(d) for d in data.get("alerts", ())]
        silences = [Silence.from_dict(d) for d in data.get("silences", ())]
        groups = [GroupState.from_dict(d) for d in data.get("groups", ())]
        return cls(
            alerts={r.key: r for r in records},
            silences={s.id: s for s in silences},
            groups={g.id: g for g in groups},
        )

    def replace(self, **changes: Any) -> EngineState:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class AlertChanged:
    """An alert fired, was updated, or resolved (its `ends_at_ns` is set)."""

    alert: Alert


@dataclass(frozen=True, slots=True)
class SilenceChanged:
    """A silence was added, edited or expired (replaces the silence with the same id)."""

    silence: Silence


@dataclass(frozen=True, slots=True)
class Tick:
    """Nothing happened; time passed (the dispatcher's wake-up)."""


Event = AlertChanged | SilenceChanged | Tick
