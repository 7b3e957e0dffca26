"""The cursor helpers every list route shares."""

import pytest
from fastapi import HTTPException

from inferloop.server.pagination import decode_cursor, encode_cursor, page_of


def test_a_cursor_round_trips_its_key():
    key = {"id": 41, "at_ns": 1_700_000_000_000_000_000}
    assert decode_cursor(encode_cursor(key), fields=("id", "at_ns")) == key


def test_no_cursor_means_the_first_page():
    assert decode_cursor(None, fields=("id",)) is None


@pytest.mark.parametrize("cursor", ["not base64 !!", encode_cursor({"other": 1}), "e30"])
def test_a_foreign_cursor_is_refused_with_422(cursor):
    with pytest.raises(HTTPException) as refused:
        decode_cursor(cursor, fields=("id",))
    assert refused.value.status_code == 422


def test_page_of_keeps_limit_rows_and_points_at_the_last():
    rows = [{"id": n} for n in range(4)]
    kept, cursor = page_of(rows, limit=3, key_of=lambda row: {"id": row["id"]})
    assert kept == rows[:3]
    assert decode_cursor(cursor, fields=("id",)) == {"id": 2}
    assert page_of(rows[:3], limit=3, key_of=lambda row: row) == (rows[:3], None)
