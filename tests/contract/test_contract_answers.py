"""The answers of POST /v1/events that producers rely on, on a real server and store.

A partly invalid batch: the valid events are stored, the answer is 422 with
``stored`` and every rejected index, and completeness then tells the truth.
"""

from __future__ import annotations

import httpx
from ingest_events import MINUTE_NS, EventFactory
from serving import served

from inferloop.server import create_app
from inferloop.settings import Settings


def test_partly_invalid_batch_answers_422_with_stored_and_each_rejected_index(
    database_url, migrated_engine
):
    factory = EventFactory(model="partly")
    events = [factory.inference() for _ in range(6)]
    events[1]["latency_ns"] = -1
    events[4]["status"] = "maybe"
    body = factory.batch_bytes(events)
    start_s = factory.base_time_ns / 1e9
    window = {"start_s": start_s, "end_s": start_s + MINUTE_NS / 1e9}

    with served(create_app(Settings(database_url=database_url))) as base:
        response = httpx.post(f"{base}/v1/events", content=body)
        again = httpx.post(f"{base}/v1/events", content=body)
        complete = httpx.get(f"{base}/v1/models/partly/completeness", params=window).json()

    assert response.status_code == 422
    answer = response.json()
    assert {"detail", "rejected", "stored", "duplicates"} <= answer.keys()
    assert (answer["stored"], answer["duplicates"]) == (4, 0)
    assert [r["event_index"] for r in answer["rejected"]] == [1, 4]
    assert {r["code"] for r in answer["rejected"]} == {"invalid"}
    # A resend stores nothing twice: the valid events come back as duplicates.
    assert (again.status_code, again.json()["stored"], again.json()["duplicates"]) == (422, 0, 4)
    assert (complete["received"], complete["emitted"], complete["sdk_dropped_total"]) == (4, 6, 0)


def test_oversized_and_undecodable_bodies_answer_by_their_rejection_code(
    database_url, migrated_engine
):
    app = create_app(Settings(database_url=database_url))
    app.state.inferloop.pipeline.max_message_bytes = 10_000
    with served(app) as base:
        not_json = httpx.post(f"{base}/v1/events", content=b"{")
        too_large = httpx.post(f"{base}/v1/events", content=b" " * 10_001)
    assert not_json.status_code == 400
    assert not_json.json()["rejected"][0]["code"] == "undecodable"
    assert too_large.status_code == 413


def test_a_store_without_its_schema_answers_503_and_asks_for_a_retry(database_url):
    factory = EventFactory()
    body = factory.batch_bytes([factory.inference()])
    with served(create_app(Settings(database_url=database_url))) as base:
        response = httpx.post(f"{base}/v1/events", content=body)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
