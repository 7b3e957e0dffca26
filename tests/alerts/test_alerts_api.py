"""Silences over HTTP: create, list, edit and expire, on a real server and both databases."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from serving import served

from inferloop.alerts import Silence, stored_silences
from inferloop.server import create_app
from inferloop.settings import Settings

S = 1_000_000_000
HOUR_NS = 3600 * S


@pytest.fixture
def api(migrated_engine) -> Iterator[httpx.Client]:
    app = create_app(Settings(), engine=migrated_engine)
    with served(app) as url, httpx.Client(base_url=f"{url}/v1/alerts") as client:
        yield client


def _create(api: httpx.Client, **body) -> dict:
    answer = api.post("/silences", json={"matchers": ['model="fraud"'], **body})
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_a_silence_created_with_a_duration_starts_now_and_is_stored(api, migrated_engine) -> None:
    before = time.time_ns()
    created = _create(
        api,
        matchers=['model="fraud"', 'kind=~".*drift"'],
        duration="2h",
        comment="retraining",
        created_by="ana",
    )
    assert created["matchers"] == ['model="fraud"', 'kind=~".*drift"']
    assert before <= created["starts_at_ns"] <= time.time_ns()
    assert created["ends_at_ns"] - created["starts_at_ns"] == 2 * HOUR_NS
    assert (created["state"], created["comment"], created["created_by"]) == (
        "active",
        "retraining",
        "ana",
    )
    with migrated_engine.connect() as connection:
        (stored,) = stored_silences(connection, now_ns=time.time_ns())
    assert stored == Silence.from_dict({k: v for k, v in created.items() if k != "state"})


def test_a_silence_may_start_later_and_is_then_pending(api) -> None:
    start = time.time_ns() + HOUR_NS
    created = _create(api, starts_at_ns=start, ends_at_ns=start + HOUR_NS)
    assert (created["starts_at_ns"], created["state"]) == (start, "pending")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"matchers": ["model"], "duration": "1h"}, "needs one of =, !=, =~, !~"),
        ({"matchers": ['model=~"("'], "duration": "1h"}, "invalid regular expression"),
        ({"matchers": ['team=""'], "duration": "1h"}, "must not match the empty string"),
        ({"matchers": ['model="x"'], "duration": "soon"}, "invalid duration"),
        ({"matchers": ['model="x"']}, "either an end or a duration"),
        ({"matchers": ['model="x"'], "starts_at_ns": 10 * S, "ends_at_ns": 5 * S}, "end"),
        ({"matchers": ['model="x"'], "starts_at_ns": 1 * S, "ends_at_ns": 2 * S}, "future"),
    ],
)
def test_a_bad_matcher_or_window_is_refused_with_422_saying_why(api, body, message) -> None:
    answer = api.post("/silences", json=body)
    assert answer.status_code == 422
    assert message in answer.json()["detail"]
    assert api.get("/silences", params={"include_expired": True}).json()["items"] == []


def test_no_matchers_at_all_is_refused_by_the_schema(api) -> None:
    assert api.post("/silences", json={"matchers": [], "duration": "1h"}).status_code == 422


def test_the_list_shows_active_and_pending_and_expired_only_when_asked(api) -> None:
    active = _create(api, duration="1h")
    later = time.time_ns() + HOUR_NS
    pending = _create(api, matchers=['model="churn"'], starts_at_ns=later, duration="1h")
    gone = _create(api, matchers=['model="ranker"'], duration="1h")
    assert api.delete(f"/silences/{gone['id']}").status_code == 200
    listed = api.get("/silences").json()["items"]
    assert [(s["id"], s["state"]) for s in listed] == [
        (active["id"], "active"),
        (pending["id"], "pending"),
    ]
    everything = api.get("/silences", params={"include_expired": "true"}).json()["items"]
    assert {s["id"]: s["state"] for s in everything} == {
        active["id"]: "active",
        pending["id"]: "pending",
        gone["id"]: "expired",
    }


def test_expiring_ends_the_silence_now_and_a_second_expiry_is_a_conflict(api) -> None:
    created = _create(api, duration="1h")
    before = time.time_ns()
    expired = api.delete(f"/silences/{created['id']}")
    assert expired.status_code == 200
    body = expired.json()
    assert body["state"] == "expired" and before <= body["ends_at_ns"] <= time.time_ns()
    assert body["starts_at_ns"] == created["starts_at_ns"]
    again = api.delete(f"/silences/{created['id']}")
    assert again.status_code == 409 and "already expired" in again.json()["detail"]


def test_expiring_a_pending_silence_means_it_never_begins(api) -> None:
    start = time.time_ns() + HOUR_NS
    created = _create(api, starts_at_ns=start, duration="1h")
    body = api.delete(f"/silences/{created['id']}").json()
    assert body["state"] == "expired" and body["ends_at_ns"] <= time.time_ns()
    assert api.get("/silences").json()["items"] == []


def test_an_unknown_silence_is_404_for_expire_edit_and_get(api) -> None:
    assert api.delete("/silences/nope").status_code == 404
    assert api.put("/silences/nope", json={"comment": "x"}).status_code == 404
    missing = api.get("/silences/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]


def test_editing_the_comment_or_end_keeps_the_silence(api) -> None:
    created = _create(api, duration="1h", comment="deploy")
    answer = api.put(f"/silences/{created['id']}", json={"comment": "longer", "duration": "3h"})
    assert answer.status_code == 200
    (edited,) = answer.json()
    assert edited["id"] == created["id"] and edited["comment"] == "longer"
    now = time.time_ns()
    assert now + 3 * HOUR_NS - 60 * S <= edited["ends_at_ns"] <= now + 3 * HOUR_NS
    assert api.get(f"/silences/{created['id']}").json() == edited


def test_editing_the_matchers_expires_the_silence_and_creates_a_new_one(api) -> None:
    created = _create(api, duration="1h", comment="deploy", created_by="ana")
    answer = api.put(f"/silences/{created['id']}", json={"matchers": ['model=~"fraud|churn"']})
    assert answer.status_code == 200, answer.text
    old, new = answer.json()
    assert old["id"] == created["id"] and old["state"] == "expired"
    assert new["id"] != created["id"] and new["state"] == "active"
    assert new["matchers"] == ['model=~"fraud|churn"']
    assert (new["ends_at_ns"], new["comment"], new["created_by"]) == (
        created["ends_at_ns"],
        "deploy",
        "ana",
    )
    assert [s["id"] for s in api.get("/silences").json()["items"]] == [new["id"]]
    history = api.get("/silences", params={"include_expired": True}).json()["items"]
    assert {s["id"] for s in history} == {old["id"], new["id"]}


def test_an_expired_silence_cannot_be_edited_and_a_bad_edit_changes_nothing(api) -> None:
    created = _create(api, duration="1h")
    bad = api.put(f"/silences/{created['id']}", json={"matchers": ["model~fraud"]})
    assert bad.status_code == 422 and "model~fraud" in bad.json()["detail"]
    assert api.get(f"/silences/{created['id']}").json() == created
    api.delete(f"/silences/{created['id']}")
    late = api.put(f"/silences/{created['id']}", json={"comment": "late"})
    assert late.status_code == 409


def test_silences_need_the_api_key_when_one_is_set(migrated_engine) -> None:
    app = create_app(Settings(api_key="k" * 32), engine=migrated_engine)
    with served(app) as url:
        body = {"matchers": ['model="fraud"'], "duration": "1h"}
        assert httpx.post(f"{url}/v1/alerts/silences", json=body).status_code == 401
        authorized = httpx.post(
            f"{url}/v1/alerts/silences", json=body, headers={"Authorization": "Bearer " + "k" * 32}
        )
        assert authorized.status_code == 201
