"""One error format (RFC 9457 problem documents) and request size limits, on a real server."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from ingest_events import EventFactory
from serving import served

from inferloop.server import create_app
from inferloop.settings import Settings

PROBLEM = "application/problem+json"
MEMBERS = {"type", "title", "status", "detail", "instance"}
MB = 1024 * 1024


@pytest.fixture
def app(tmp_path):
    from inferloop.store import upgrade

    url = f"sqlite:///{tmp_path / 'problems.db'}"
    upgrade(url)
    return create_app(Settings(database_url=url))


@pytest.fixture
def base(app) -> Iterator[str]:
    with served(app) as url:
        yield url


def _problem(answer: httpx.Response, status: int) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    document = answer.json()
    assert set(document) >= MEMBERS and document["status"] == status
    return document


def test_an_unknown_route_is_a_404_problem_naming_the_path(base):
    document = _problem(httpx.get(f"{base}/v1/nothing-here"), 404)
    assert document["instance"] == "/v1/nothing-here"
    assert document["title"] == "Not Found" and "/v1/nothing-here" in document["detail"]


def test_a_validation_error_names_each_field_by_its_path(base):
    answer = httpx.get(f"{base}/v1/dead-letters", params={"limit": 0})
    document = _problem(answer, 422)
    (error,) = document["errors"]
    assert error["path"] == "query.limit" and "greater than or equal to 1" in error["message"]
    assert "query.limit" in document["detail"]


def test_a_body_that_breaks_the_schema_is_a_422_with_body_paths(base):
    answer = httpx.post(f"{base}/v1/alerts/silences", json={"matchers": [], "comment": 3})
    paths = {error["path"] for error in _problem(answer, 422)["errors"]}
    assert paths == {"body.matchers", "body.comment"}


def test_a_route_refusal_is_a_problem_with_its_message(base):
    document = _problem(httpx.get(f"{base}/v1/findings/12345/report"), 404)
    assert document["detail"] == "finding 12345 has no report"


def test_a_wrong_method_is_a_405_problem_that_says_what_is_allowed(base):
    answer = httpx.delete(f"{base}/v1/findings")
    _problem(answer, 405)
    assert answer.headers["allow"] == "GET"
    both = httpx.request("OPTIONS", f"{base}/v1/alerts/silences")  # two routes, one path
    assert both.status_code == 405 and both.headers["allow"] == "GET, POST"
    assert both.json()["detail"].endswith("allowed: GET, POST")


def test_ingest_rejections_keep_their_fields_inside_the_problem(base):
    factory = EventFactory()
    body = factory.batch_bytes([factory.inference(), factory.inference(status="maybe")])
    document = _problem(httpx.post(f"{base}/v1/events", content=body), 422)
    assert document["stored"] == 1 and document["duplicates"] == 0
    assert document["rejected"][0]["event_index"] == 1 and "$.events[1]" in document["detail"]


def test_an_unexpected_error_is_a_500_without_internals(app):
    @app.get("/v1/boom")
    def boom() -> None:
        raise RuntimeError("password=hunter2 in a traceback")

    with served(app) as url:
        answer = httpx.get(f"{url}/v1/boom")
    document = _problem(answer, 500)
    assert "hunter2" not in answer.text and "Traceback" not in answer.text
    assert "server's log" in document["detail"]


def test_a_20_mb_body_gets_a_413_problem_not_a_reset_connection(base):
    answer = httpx.post(f"{base}/v1/events", content=b"x" * (20 * MB), timeout=60)
    document = _problem(answer, 413)
    assert str(16 * MB) in document["detail"]
    # The connection stayed usable: the same client carries on.
    with httpx.Client(timeout=60) as client:
        assert client.post(f"{base}/v1/labels", content=b"x" * (20 * MB)).status_code == 413
        assert client.get(f"{base}/healthz").status_code == 200


def test_a_20_mb_body_streamed_without_a_length_gets_a_413_too(base):
    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b"x" * MB

    answer = httpx.post(f"{base}/v1/alerts/silences", content=chunks(), timeout=60)
    _problem(answer, 413)


def test_a_large_body_refused_for_its_key_is_a_clean_401_too(tmp_path, app):
    from inferloop.store.api_keys import issue_key

    state = app.state.inferloop
    with state.engine.begin() as connection:
        issue_key(connection, name="only", scopes=["read"], now_ns=1)
    with served(app) as url:
        answer = httpx.post(f"{url}/v1/events", content=b"x" * (10 * MB), timeout=60)
    _problem(answer, 401)
