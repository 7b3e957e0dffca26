"""GET /v1/models: the models of a range with their calls, errors and percentiles, and the
quiet ones that still have open findings, paged by name."""

from __future__ import annotations

import time

import httpx
from ingest_events import EventFactory
from serving import served

from inferloop.server import create_app
from inferloop.settings import Settings
from inferloop.store.findings import insert_finding


def _ingest(base: str, model: str, calls: int, errors: int) -> None:
    factory = EventFactory(model=model, version="1")
    events = [factory.inference() for _ in range(calls - errors)]
    events += [
        factory.inference(status="error", error_type="ValueError", error_message="bad")
        for _ in range(errors)
    ]
    answer = httpx.post(f"{base}/v1/events", content=factory.batch_bytes(events), timeout=30)
    assert answer.status_code == 200 and answer.json()["stored"] == calls


def test_models_are_listed_by_name_with_their_figures_and_open_findings(migrated_engine):
    now = time.time_ns()
    with migrated_engine.begin() as connection:
        insert_finding(
            connection,
            {
                "fingerprint": "quiet",
                "model": "archived",
                "kind": "throughput_change",
                "subject": "calls",
                "severity": "warning",
                "status": "open",
                "title": "archived: no calls",
                "evidence": {},
                "window_start_ns": now - 3600 * 10**9,
                "window_end_ns": now,
                "first_seen_ns": now,
                "last_seen_ns": now,
                "occurrences": 1,
            },
        )
    with served(create_app(Settings(), engine=migrated_engine)) as base:
        _ingest(base, "fraud", calls=40, errors=4)
        _ingest(base, "search", calls=10, errors=0)
        start_s = time.time() - 3600
        first = httpx.get(f"{base}/v1/models", params={"limit": 2, "start_s": start_s}).json()
        second = httpx.get(
            f"{base}/v1/models", params={"cursor": first["next_cursor"], "start_s": start_s}
        ).json()
        empty = httpx.get(f"{base}/v1/models", params={"start_s": 10, "end_s": 5})

    archived, fraud = first["items"]
    (search,) = second["items"]
    assert (archived["model"], archived["calls"], archived["p95_ms"]) == ("archived", 0, None)
    assert archived["open_findings"] == {"warning": 1}
    assert (fraud["model"], fraud["calls"], fraud["errors"]) == ("fraud", 40, 4)
    assert fraud["error_rate"] == 0.1 and 1.0 <= fraud["p50_ms"] <= fraud["p99_ms"] <= 6.5
    assert (search["model"], search["calls"], search["open_findings"]) == ("search", 10, {})
    assert second["next_cursor"] is None
    assert empty.status_code == 422
