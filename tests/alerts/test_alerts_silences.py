"""Silences as values: active windows, matching, expiry, and edits that replace them."""

from __future__ import annotations

import pytest

from inferloop.alerts._silences import (
    Silence,
    SilenceError,
    active_silences,
    edit_silence,
    expire_silence,
    new_silence,
    silenced_by,
)

S = 1_000_000_000


def _silence(**changes) -> Silence:
    fields = {
        "starts_at_ns": 100 * S,
        "ends_at_ns": 200 * S,
        "comment": "deploy",
        "created_by": "ana",
    }
    return new_silence('model="fraud"', **{**fields, **changes})


def test_a_silence_is_active_from_its_start_until_just_before_its_end() -> None:
    silence = _silence()
    assert [silence.active(t * S) for t in (99, 100, 199, 200)] == [False, True, True, False]
    assert active_silences([silence], 150 * S) == [silence]
    assert silenced_by([silence], {"model": "fraud"}, 150 * S) == silence
    assert silenced_by([silence], {"model": "churn"}, 150 * S) is None


def test_the_same_request_twice_makes_the_same_silence_and_a_different_one_another() -> None:
    assert _silence().id == _silence().id
    assert _silence().id != _silence(ends_at_ns=300 * S).id
    assert Silence.from_dict(_silence().to_dict()) == _silence()


def test_editing_the_matchers_expires_the_silence_and_creates_a_new_one() -> None:
    old = _silence()
    expired, successor = edit_silence(old, 150 * S, matchers='model=~"fraud|churn"')
    assert expired.id == old.id and expired.ends_at_ns == 150 * S
    assert successor.id != old.id
    assert (successor.starts_at_ns, successor.ends_at_ns) == (150 * S, 200 * S)
    assert [str(m) for m in successor.matchers] == ['model=~"fraud|churn"']
    assert old.ends_at_ns == 200 * S  # values: the original is unchanged


def test_editing_only_the_end_or_comment_keeps_the_silence() -> None:
    (edited,) = edit_silence(_silence(), 150 * S, ends_at_ns=500 * S, comment="longer")
    assert edited.id == _silence().id and edited.ends_at_ns == 500 * S
    assert edited.comment == "longer"


def test_expiring_a_silence_that_has_not_started_ends_it_before_it_begins() -> None:
    expired = expire_silence(_silence(), 50 * S)
    assert not any(expired.active(t * S) for t in range(0, 300, 10))
    with pytest.raises(SilenceError, match="already expired"):
        expire_silence(_silence(), 250 * S)
    with pytest.raises(SilenceError, match="expired"):
        edit_silence(_silence(), 250 * S, comment="late")


def test_a_silence_needs_matchers_and_must_end_after_it_starts() -> None:
    with pytest.raises(SilenceError, match="matcher"):
        new_silence((), starts_at_ns=0, ends_at_ns=1)
    with pytest.raises(SilenceError, match="end after"):
        _silence(ends_at_ns=100 * S)
