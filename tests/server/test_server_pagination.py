"""The cursor helpers every list route shares, and the lists that page with them."""

import time

import httpx
import pytest
import sqlalchemy as sa
from fastapi import HTTPException
from serving import served

from inferloop.alerts import add_silence
from inferloop.server import create_app
from inferloop.server.pagination import decode_cursor, encode_cursor, page_of
from inferloop.settings import Settings
from inferloop.store.alerting import AlertDeliveryAttempt
from inferloop.store.findings import insert_finding
from inferloop.store.outbox import enqueue_notifications
from inferloop.store.tables import DeadLetter


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


def _walk(base: str, path: str, **params) -> list[list[dict]]:
    """Every page of a list, two items at a time, following next_cursor to the end."""
    pages, cursor = [], None
    while True:
        query = {**params, "limit": 2} | ({"cursor": cursor} if cursor else {})
        answer = httpx.get(base + path, params=query)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


def _seed_lists(engine) -> None:
    now = time.time_ns()
    with engine.begin() as connection:
        for n in range(5):
            insert_finding(
                connection,
                {
                    "fingerprint": f"fp-{n}",
                    "model": "fraud",
                    "kind": "data_drift",
                    "subject": f"f{n}",
                    "severity": "warning",
                    "status": "open",
                    "title": f"finding {n}",
                    "evidence": {},
                    "window_start_ns": now - 60 * 10**9,
                    "window_end_ns": now,
                    "first_seen_ns": now,
                    "last_seen_ns": now,
                    "occurrences": 1,
                },
            )
            add_silence(
                connection,
                [f'feature="f{n}"'],
                now_ns=now,
                starts_at_ns=now - n * 10**9,
                duration="1h",
                comment=f"silence {n}",
                created_by="tests",
            )
        connection.execute(
            sa.insert(DeadLetter.__table__),
            [
                {
                    "received_at_ns": now + n,
                    "source": "http",
                    "event_index": n,
                    "reason": f"bad {n}",
                    "raw": b"{}",
                    "raw_size": 2,
                }
                for n in range(5)
            ],
        )
        enqueue_notifications(
            connection,
            [
                {
                    "id": f"n-{n}",
                    "receiver": "oncall",
                    "group_key": "g",
                    "status": "firing",
                    "body": {},
                    "created_at_ns": now + (n % 2),  # ties on time: the id breaks them
                }
                for n in range(5)
            ],
        )
        connection.execute(
            sa.insert(AlertDeliveryAttempt.__table__),
            [
                {
                    "notification_id": "n-0",
                    "receiver": "oncall",
                    "attempt": k,
                    "at_ns": now + k,
                    "outcome": "retry",
                    "status_code": 500,
                }
                for k in range(1, 6)
            ],
        )


@pytest.mark.parametrize(
    ("path", "key", "expected"),
    [
        ("/v1/findings", "title", [f"finding {n}" for n in range(5)]),
        ("/v1/dead-letters", "reason", [f"bad {n}" for n in reversed(range(5))]),
        ("/v1/alerts/notifications", "id", ["n-0", "n-2", "n-4", "n-1", "n-3"]),
        ("/v1/alerts/notifications/n-0/attempts", "attempt", [5, 4, 3, 2, 1]),
        ("/v1/alerts/silences", "comment", [f"silence {n}" for n in reversed(range(5))]),
    ],
    ids=["findings", "dead-letters", "notifications", "attempts", "silences"],
)
def test_every_list_pages_through_all_its_items_once_in_order(migrated_engine, path, key, expected):
    _seed_lists(migrated_engine)
    with served(create_app(Settings(), engine=migrated_engine)) as base:
        pages = _walk(base, path)
        stale = httpx.get(base + path, params={"cursor": encode_cursor({"nope": 1})})
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [item[key] for page in pages for item in page] == expected
    assert stale.status_code == 422
