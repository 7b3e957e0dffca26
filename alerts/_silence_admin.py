"""Silences as people manage them (API and CLI): create, list, edit and expire the stored ones.

One place for the rules both front ends share, so they answer alike: matchers
are parsed with Alertmanager's syntax, a silence ends after it starts and not in
the past, an expired silence can be neither edited nor expired again, and an edit
of the matchers stores the expired original next to its successor (see
`edit_silence`). Each function works inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Literal

import sqlalchemy as sa

from inferloop.store.alert_state import get_silence, list_silences, save_silence

from ._fields import parse_duration_ns
from ._matchers import Matcher, matches_all, parse_matchers
from ._silences import Silence, SilenceError, edit_silence, expire_silence, new_silence

SilenceState = Literal["pending", "active", "expired"]


class UnknownSilence(LookupError):
    """No silence has this id."""


class SilenceExpired(SilenceError):
    """The silence is over already: it can be neither edited nor expired (create a new one)."""


def silence_state(silence: Silence, now_ns: int) -> SilenceState:
    if silence.expired(now_ns):
        return "expired"
    return "active" if silence.active(now_ns) else "pending"


def silence_end_ns(
    starts_at_ns: int, *, ends_at_ns: int | None = None, duration: str | float | None = None
) -> int:
    """The end of a window given either as an instant or as a duration (`2h`, `90m`, seconds)."""
    if (ends_at_ns is None) == (duration is None):
        raise SilenceError("give either an end or a duration")
    if ends_at_ns is not None:
        return ends_at_ns
    try:
        return starts_at_ns + parse_duration_ns(duration)
    except ValueError as error:
        raise SilenceError(str(error)) from None


def add_silence(
    connection: sa.Connection,
    matchers: Iterable[str],
    *,
    now_ns: int,
    starts_at_ns: int | None = None,
    ends_at_ns: int | None = None,
    duration: str | float | None = None,
    comment: str = "",
    created_by: str = "",
) -> Silence:
    """Store a new silence from `starts_at_ns` (default now) to `ends_at_ns` or for
    `duration`; raises `SilenceError` or `MatcherError` (both a `ValueError`) with a
    message meant for the user."""
    starts = now_ns if starts_at_ns is None else starts_at_ns
    ends = silence_end_ns(starts, ends_at_ns=ends_at_ns, duration=duration)
    if ends <= now_ns:
        raise SilenceError("a silence must end in the future")
    silence = new_silence(
        _parse(matchers),
        starts_at_ns=starts,
        ends_at_ns=ends,
        comment=comment,
        created_by=created_by,
    )
    save_silence(connection, silence.to_dict(), now_ns=now_ns)
    return silence


def stored_silences(
    connection: sa.Connection,
    *,
    now_ns: int,
    include_expired: bool = False,
    after: tuple[int, str] | None = None,
    limit: int | None = None,
) -> list[Silence]:
    """Active and pending silences by start; every silence ever made with `include_expired`;
    a page of `limit` after the (starts_at_ns, id) key `after` when given."""
    rows = list_silences(
        connection,
        unexpired_at_ns=None if include_expired else now_ns,
        after=after,
        limit=limit,
    )
    return [Silence.from_dict(row) for row in rows]


def stored_silence(connection: sa.Connection, silence_id: str) -> Silence:
    row = get_silence(connection, silence_id)
    if row is None:
        raise UnknownSilence(f"no silence with id {silence_id!r}")
    return Silence.from_dict(row)


def expire_stored_silence(connection: sa.Connection, silence_id: str, *, now_ns: int) -> Silence:
    """End a silence now; raises `UnknownSilence`, or `SilenceExpired` if it is over already."""
    silence = _unexpired(connection, silence_id, now_ns)
    expired = _ended(silence, now_ns)
    save_silence(connection, expired.to_dict(), now_ns=now_ns)
    return expired


def edit_stored_silence(
    connection: sa.Connection,
    silence_id: str,
    *,
    now_ns: int,
    matchers: Iterable[str] | None = None,
    ends_at_ns: int | None = None,
    duration: str | float | None = None,
    comment: str | None = None,
    created_by: str | None = None,
) -> tuple[Silence, ...]:
    """Apply an edit and store the outcome: the silence edited in place, or (when the
    matchers changed) the original, expired, then its successor.

    A new `duration` counts from now, or from the start of a silence not yet begun.
    """
    silence = _unexpired(connection, silence_id, now_ns)
    if duration is not None:
        start = max(now_ns, silence.starts_at_ns)
        ends_at_ns = silence_end_ns(start, ends_at_ns=ends_at_ns, duration=duration)
    if ends_at_ns is not None and ends_at_ns <= now_ns:
        raise SilenceError("a silence must end in the future (expire it instead)")
    parsed = None if matchers is None else _parse(matchers)
    result = edit_silence(
        silence,
        now_ns,
        matchers=parsed,
        ends_at_ns=ends_at_ns,
        comment=comment,
        created_by=created_by,
    )
    if len(result) == 2:
        result = (_ended(result[0], now_ns), result[1])
    for changed in result:
        save_silence(connection, changed.to_dict(), now_ns=now_ns)
    return result


def _ended(silence: Silence, now_ns: int) -> Silence:
    """The silence over as of now, so it is listed as expired at once.

    `expire_silence` leaves one that has not begun as an empty window at its start,
    still in the future; here it becomes a window that closed just now instead
    (Alertmanager likewise sets start and end to now).
    """
    if silence.expired(now_ns):
        return silence
    if silence.active(now_ns):
        return expire_silence(silence, now_ns)
    return replace(silence, starts_at_ns=now_ns - 1, ends_at_ns=now_ns)


def _unexpired(connection: sa.Connection, silence_id: str, now_ns: int) -> Silence:
    silence = stored_silence(connection, silence_id)
    if silence.expired(now_ns):
        raise SilenceExpired(f"silence {silence_id} has already expired")
    return silence


def _parse(matchers: Iterable[str]) -> tuple[Matcher, ...]:
    items = [matchers] if isinstance(matchers, str) else list(matchers)
    if not items:
        raise SilenceError("a silence needs at least one matcher")
    parsed = parse_matchers(items)
    if matches_all(parsed, {}):
        # As in Alertmanager: such matchers also match alerts without those labels.
        raise SilenceError(
            "at least one matcher must not match the empty string, or the silence "
            "would silence every alert"
        )
    return parsed
