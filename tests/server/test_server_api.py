"""The server under uvicorn in a thread on a free loopback port, with a real database."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import orjson
import pytest
from ingest_events import MINUTE_NS, EventFactory
from serving import served

from inferloop.server import create_app
from inferloop.settings import Settings
from inferloop.store import upgrade


class _Worker:
    def __init__(self, name: str, journal: list[str]) -> None:
        self.name, self.journal = name, journal

    def start(self) -> None:
        self.journal.append(f"start {self.name}")

    def stop(self) -> None:
        self.journal.append(f"stop {self.name}")


@pytest.fixture
def journal() -> list[str]:
    return []


@pytest.fixture
def base_url(database_url: str, journal: list[str]) -> Iterator[str]:
    upgrade(database_url)
    app = create_app(
        Settings(database_url=database_url),
        background=[_Worker("first", journal), _Worker("second", journal)],
    )
    with served(app) as base:
        yield base


def test_healthz_answers_and_background_workers_start_in_order(base_url, journal):
    assert httpx.get(f"{base_url}/healthz").json() == {"status": "ok"}
    assert journal == ["start first", "start second"]


def test_valid_batch_is_stored_and_a_resend_is_reported_as_duplicates(base_url):
    factory = EventFactory()
    body = factory.batch_bytes([factory.inference() for _ in range(20)])
    first = httpx.post(f"{base_url}/v1/events", content=body)
    again = httpx.post(f"{base_url}/v1/events", content=body)
    assert first.status_code == 200 and first.json() == {"stored": 20, "duplicates": 0}
    assert again.json() == {"stored": 0, "duplicates": 20}


def test_invalid_event_gets_422_naming_field_while_valid_ones_are_stored(base_url):
    factory = EventFactory()
    body = factory.batch_bytes([factory.inference(), factory.inference(status="maybe")])
    response = httpx.post(f"{base_url}/v1/events", content=body)
    assert response.status_code == 422
    payload = response.json()
    assert payload["stored"] == 1
    assert payload["rejected"][0]["event_index"] == 1
    assert "status" in payload["rejected"][0]["reason"]
    assert "$.events[1]" in payload["detail"]
    letters = httpx.get(f"{base_url}/v1/dead-letters").json()["items"]
    assert letters[0]["source"] == "http" and letters[0]["event_index"] == 1


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b'{"schema_version": 1, "emitter_id": "e", "events": [', 400, "truncated"),
        (b'{"schema_version": 1, "emitter_id": "\xff", "events": []}', 400, "UTF-8"),
        (
            orjson.dumps({"schema_version": 2, "emitter_id": "e", "events": []}),
            422,
            "schema_version",
        ),
        (orjson.dumps({"schema_version": 1, "emitter_id": "e"}), 422, "events"),
    ],
    ids=["truncated", "not-utf8", "wrong-schema-version", "missing-events"],
)
def test_invalid_batches_get_a_4xx_that_names_the_problem(base_url, body, status, words):
    response = httpx.post(f"{base_url}/v1/events", content=body)
    assert response.status_code == status
    assert words in response.json()["detail"]


def test_huge_payload_event_is_refused_by_size(base_url):
    factory = EventFactory()
    huge = factory.inference(outputs={"rows": [{"blob": "y" * 300_000}]})
    response = httpx.post(f"{base_url}/v1/events", content=factory.batch_bytes([huge]))
    assert response.status_code == 422
    assert "`outputs` is" in response.json()["detail"]


def test_latency_and_completeness_endpoints_read_the_rollups(base_url):
    factory = EventFactory(model="api-model")
    events = [factory.inference(latency_ns=10_000_000) for _ in range(30)]
    factory.skip(10)
    events += [factory.inference(latency_ns=20_000_000) for _ in range(30)]
    httpx.post(f"{base_url}/v1/events", content=factory.batch_bytes(events)).raise_for_status()
    start_s = factory.base_time_ns / 1e9
    params = {"start_s": start_s, "end_s": start_s + MINUTE_NS / 1e9}

    latency = httpx.get(f"{base_url}/v1/models/api-model/latency", params=params).json()
    complete = httpx.get(f"{base_url}/v1/models/api-model/completeness", params=params).json()

    assert latency["count"] == 60
    assert latency["p50_ms"] == pytest.approx(10.0, rel=0.01)
    assert latency["p99_ms"] == pytest.approx(20.0, rel=0.01)
    assert (complete["received"], complete["lost"], complete["emitted"]) == (60, 10, 70)
    assert complete["received_share"] == pytest.approx(60 / 70)


def test_metrics_endpoint_exposes_ingest_counters(base_url):
    factory = EventFactory()
    httpx.post(f"{base_url}/v1/events", content=factory.batch_bytes([factory.inference()]))
    httpx.post(f"{base_url}/v1/events", content=b"nope")
    text = httpx.get(f"{base_url}/metrics").text
    assert 'inferloop_ingest_events_total{outcome="stored",source="http"} 1.0' in text
    assert 'inferloop_ingest_dead_letters_total{source="http"} 1.0' in text
    assert "inferloop_ingest_batch_seconds_bucket" in text


def test_api_key_is_required_when_configured(tmp_path):
    url = f"sqlite:///{tmp_path / 'keyed.db'}"
    upgrade(url)
    app = create_app(Settings(database_url=url, api_key="s3cret"))
    with served(app) as base:
        factory = EventFactory()
        body = factory.batch_bytes([factory.inference()])
        refused = httpx.post(f"{base}/v1/events", content=body)
        wrong = httpx.post(
            f"{base}/v1/events", content=body, headers={"Authorization": "Bearer nope"}
        )
        allowed = httpx.post(
            f"{base}/v1/events", content=body, headers={"Authorization": "Bearer s3cret"}
        )
        assert (refused.status_code, wrong.status_code, allowed.status_code) == (401, 401, 200)
        assert httpx.get(f"{base}/healthz").status_code == 200


def test_workers_stop_in_reverse_order_when_the_app_stops(tmp_path):
    url = f"sqlite:///{tmp_path / 'lifecycle.db'}"
    upgrade(url)
    journal: list[str] = []
    app = create_app(
        Settings(database_url=url), background=[_Worker("a", journal), _Worker("b", journal)]
    )
    with served(app):
        pass
    assert journal == ["start a", "start b", "stop b", "stop a"]


def test_body_over_the_limit_is_refused_with_413_even_when_streamed(tmp_path):
    url = f"sqlite:///{tmp_path / 'limit.db'}"
    upgrade(url)
    app = create_app(Settings(database_url=url))
    app.state.inferloop.pipeline.max_message_bytes = 1000
    factory = EventFactory()
    body = factory.batch_bytes([factory.inference() for _ in range(10)])
    assert len(body) > 1000

    def chunks():
        yield body[:500]
        yield body[500:]

    with served(app) as base:
        declared = httpx.post(f"{base}/v1/events", content=body)
        streamed = httpx.post(f"{base}/v1/events", content=chunks())
        assert (declared.status_code, streamed.status_code) == (413, 413)


@pytest.mark.slow
def test_concurrent_posts_from_many_emitters_are_all_stored(base_url):
    from concurrent.futures import ThreadPoolExecutor

    factories = [EventFactory(model="busy") for _ in range(8)]
    bodies = [
        factory.batch_bytes([factory.inference() for _ in range(25)])
        for factory in factories
        for _ in range(10)
    ]

    def post(body: bytes) -> int:
        return httpx.post(f"{base_url}/v1/events", content=body, timeout=60).status_code

    def read(_: int) -> int:
        return httpx.get(f"{base_url}/v1/models/busy/latency", timeout=60).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        writes = pool.map(post, bodies)
        reads = pool.map(read, range(20))
        statuses = list(writes) + list(reads)
    assert set(statuses) == {200}
    start_s = factories[0].base_time_ns / 1e9
    params = {"start_s": start_s, "end_s": start_s + MINUTE_NS / 1e9}
    complete = httpx.get(f"{base_url}/v1/models/busy/completeness", params=params).json()
    assert (complete["received"], complete["lost"]) == (8 * 10 * 25, 0)


def test_the_message_limit_comes_from_the_collector_settings(tmp_path):
    url = f"sqlite:///{tmp_path / 'tuned.db'}"
    upgrade(url)
    app = create_app(Settings(database_url=url, collector={"max_message_bytes": 2000}))
    factory = EventFactory()
    small = factory.batch_bytes([factory.inference()])
    large = factory.batch_bytes([factory.inference() for _ in range(20)])
    assert len(small) < 2000 < len(large)
    with served(app) as base:
        assert httpx.post(f"{base}/v1/events", content=small).status_code == 200
        assert httpx.post(f"{base}/v1/events", content=large).status_code == 413
