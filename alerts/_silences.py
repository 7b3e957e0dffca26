"""Silences: matchers and a time window during which matching alerts are not sent.

Values, not objects with a life of their own: every change returns new
silences. Editing a silence's matchers expires it and creates a new one (as in
Alertmanager), so what was silenced when stays answerable from the history.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ._matchers import Matcher, matches_all, parse_matchers


class SilenceError(ValueError):
    """A silence that cannot exist (no matchers, ends before it starts, expired)."""


@dataclass(frozen=True, slots=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at_ns: int
    ends_at_ns: int
    comment: str = ""
    created_by: str = ""

    def __post_init__(self) -> None:
        if not self.matchers:
            raise SilenceError("a silence needs at least one matcher")
        if self.ends_at_ns < self.starts_at_ns:
            raise SilenceError("a silence must end after it starts")

    def active(self, now_ns: int) -> bool:
        return self.starts_at_ns <= now_ns < self.ends_at_ns

    def expired(self, now_ns: int) -> bool:
        return self.ends_at_ns <= now_ns

    def silences(self, labels: Mapping[str, str], now_ns: int) -> bool:
        return self.active(now_ns) and matches_all(self.matchers, labels)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "matchers": [str(m) for m in self.matchers],
            "starts_at_ns": self.starts_at_ns,
            "ends_at_ns": self.ends_at_ns,
            "comment": self.comment,
            "created_by": self.created_by,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Silence:
        return cls(
            id=data["id"],
            matchers=parse_matchers(data["matchers"]),
            starts_at_ns=int(data["starts_at_ns"]),
            ends_at_ns=int(data["ends_at_ns"]),
            comment=data.get("comment", ""),
            created_by=data.get("created_by", ""),
        )


def silence_id(
    matchers: Iterable[Matcher], starts_at_ns: int, ends_at_ns: int, comment: str, created_by: str
) -> str:
    """A deterministic id: the same request made twice (a retry after a crash) is one silence."""
    fields = [*(str(m) for m in matchers), str(starts_at_ns), str(ends_at_ns), comment, created_by]
    return hashlib.sha256("\x00".join(fields).encode()).hexdigest()[:16]


def new_silence(
    matchers: Iterable[Matcher] | str,
    *,
    starts_at_ns: int,
    ends_at_ns: int,
    comment: str = "",
    created_by: str = "",
    id: str | None = None,
) -> Silence:
    parsed = parse_matchers(matchers) if isinstance(matchers, str) else tuple(matchers)
    if ends_at_ns <= starts_at_ns:
        raise SilenceError("a silence must end after it starts")
    return Silence(
        id=id or silence_id(parsed, starts_at_ns, ends_at_ns, comment, created_by),
        matchers=parsed,
        starts_at_ns=starts_at_ns,
        ends_at_ns=ends_at_ns,
        comment=comment,
        created_by=created_by,
    )


def active_silences(silences: Iterable[Silence], now_ns: int) -> list[Silence]:
    return [s for s in silences if s.active(now_ns)]


def silenced_by(
    silences: Iterable[Silence], labels: Mapping[str, str], now_ns: int
) -> Silence | None:
    """The first active silence that matches these labels, if any."""
    return next((s for s in silences if s.silences(labels, now_ns)), None)


def expire_silence(silence: Silence, now_ns: int) -> Silence:
    """The silence ended now (one that has not started yet becomes an empty window)."""
    if silence.expired(now_ns):
        raise SilenceError(f"silence {silence.id} has already expired")
    if now_ns <= silence.starts_at_ns:
        return replace(silence, starts_at_ns=now_ns, ends_at_ns=now_ns)  # an empty window
    return replace(silence, ends_at_ns=now_ns)


def edit_silence(
    silence: Silence,
    now_ns: int,
    *,
    matchers: Iterable[Matcher] | str | None = None,
    ends_at_ns: int | None = None,
    comment: str | None = None,
    created_by: str | None = None,
) -> tuple[Silence, ...]:
    """Apply an edit; returns the silences to store (the old one first when it was replaced).

    A change of matchers expires the old silence and starts a new one with a new
    id (from now, or from its start if it has not begun); other edits keep the id.
    """
    if silence.expired(now_ns):
        raise SilenceError(f"silence {silence.id} has expired; create a new one")
    new_matchers = (
        None
        if matchers is None
        else parse_matchers(matchers)
        if isinstance(matchers, str)
        else tuple(matchers)
    )
    ends = ends_at_ns if ends_at_ns is not None else silence.ends_at_ns
    text = comment if comment is not None else silence.comment
    author = created_by if created_by is not None else silence.created_by
    if new_matchers is None or new_matchers == silence.matchers:
        return (replace(silence, ends_at_ns=ends, comment=text, created_by=author),)
    starts = max(now_ns, silence.starts_at_ns)
    successor = new_silence(
        new_matchers, starts_at_ns=starts, ends_at_ns=ends, comment=text, created_by=author
    )
    return expire_silence(silence, now_ns), successor
