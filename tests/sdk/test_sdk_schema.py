"""Emitted batches validate against the published JSON Schema (sdk/schema/batch-v1.json).

jsonschema is a dev dependency: imported directly, no fallback validator.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from inferloop.collector import validate_batch
from inferloop.sdk import SCHEMA_PATH, configure, flush, load_schema, log_label, monitor


def _validate_all(batches: list[dict[str, Any]]) -> list[str]:
    """Every jsonschema error of ``batches`` against the published schema."""
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    return [error.message for batch in batches for error in validator.iter_errors(batch)]


def _collector_rejections(batch: dict[str, Any]) -> list[str]:
    """What the collector refuses in ``batch`` (the validator the schema is generated from)."""
    validated = validate_batch(json.dumps(batch).encode())
    return [rejection.reason for rejection in validated.rejections]


def test_schema_is_draft_2020_12_and_shipped_with_package() -> None:
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA_PATH.name == "batch-v1.json"


def test_emitted_batches_validate_against_schema() -> None:
    np = pytest.importorskip("numpy")
    torch = pytest.importorskip("torch")
    transport = configure(
        transport="memory", flush_interval_s=0.01, queue_size=8, payload_max_bytes=400
    )
    gate_calls = []

    @monitor(model="fraud", version="3", tags={"region": "eu"})
    def predict(features):
        gate_calls.append(1)
        return np.array([0.1, 0.9])

    @monitor(model="vision")
    def classify(batch):
        raise RuntimeError("out of memory")

    score = monitor(model="fraud", version="3", tags={"region": "eu"})(lambda age, country: 0.5)
    score(31, "fr")  # the worker's direct-to-JSON path
    score(31, country=None)
    predict({"age": 31, "country": "fr", "score": float("nan")})
    predict(np.ones((100, 8)))
    predict([{"text": "z" * 200}] * 20)  # truncated by the size cap
    with pytest.raises(RuntimeError):
        classify(torch.zeros(64, 3, 8, 8))
    with monitor(model="block") as call:
        call.set_inputs(None)
    log_label("p-1", {"fraud": True}, model="fraud")
    assert flush(5)
    for _ in range(50):  # overflow the tiny queue so that a drop report is emitted
        predict(1)
    assert flush(5)
    predict(2)
    assert flush(5)
    batches = transport.batches
    events = transport.events
    assert any("dropped" in event for event in events)
    assert any(event.get("inputs") and event["inputs"].get("truncated") for event in events)
    assert {event["kind"] for event in events} == {"inference", "label"}
    assert _validate_all(batches) == []


def test_schema_rejects_malformed_events() -> None:
    transport = configure(transport="memory", flush_interval_s=0.01)
    monitor(model="m")(lambda x: x)(1)
    assert flush(5)
    good = transport.batches[0]
    bad_status = json.loads(json.dumps(good))
    bad_status["events"][0]["status"] = "maybe"
    missing_seq = json.loads(json.dumps(good))
    del missing_seq["events"][0]["seq"]
    assert _validate_all([good]) == []
    assert len(_validate_all([bad_status])) == 1
    assert len(_validate_all([missing_seq])) == 1


def test_schema_and_collector_both_refuse_a_broken_emitted_batch() -> None:
    """The published schema is only trusted because it judges as the collector does."""
    transport = configure(transport="memory", flush_interval_s=0.01)
    monitor(model="m")(lambda x: x)(1)
    assert flush(5)
    good = transport.batches[0]
    assert _validate_all([good]) == []
    assert _collector_rejections(good) == []
    bad = json.loads(json.dumps(good))
    bad["events"][0]["latency_ns"] = -1
    bad["events"][0]["event_id"] = "not-hex"
    bad["events"][0]["surprise"] = 1
    assert len(_validate_all([bad])) >= 1
    assert len(_collector_rejections(bad)) >= 1
