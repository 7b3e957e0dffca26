"""The wire contract is defined once: the published schema and the collector judge alike.

``sdk/schema/batch-v1.json`` is generated from the collector's msgspec types;
each batch under ``good/`` and ``bad/`` (one rule broken per bad file) must get
the same verdict from jsonschema and from the collector, down to which event
is refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from inferloop.collector import validate_batch
from inferloop.collector.contract import MAX_PAYLOAD_BYTES
from inferloop.collector.contract_schema import REGENERATE, schema_text
from inferloop.sdk import SCHEMA_PATH, load_schema

CORPUS = Path(__file__).parent
GOOD = sorted((CORPUS / "good").glob("*.json"))
BAD = sorted((CORPUS / "bad").glob("*.json"))
WHOLE_BATCH = -1


def _schema_verdict(batch: Any) -> set[int]:
    """Indexes of the events jsonschema refuses; WHOLE_BATCH for an error outside `events[i]`."""
    validator = jsonschema.Draft202012Validator(load_schema())
    refused = set()
    for error in validator.iter_errors(batch):
        path = list(error.absolute_path)
        in_event = len(path) >= 2 and path[0] == "events" and isinstance(path[1], int)
        refused.add(path[1] if in_event else WHOLE_BATCH)
    return refused


def _collector_verdict(raw: bytes) -> set[int]:
    return {rejection.event_index for rejection in validate_batch(raw).rejections}


def test_published_schema_is_the_one_generated_from_the_collector_contract():
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), (
        f"sdk/schema/batch-v1.json is out of date; regenerate it: {REGENERATE}"
    )


def test_published_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(load_schema())


def test_the_corpus_has_good_and_bad_batches():
    assert len(GOOD) >= 10 and len(BAD) >= 30


@pytest.mark.parametrize("path", GOOD, ids=[p.stem for p in GOOD])
def test_good_batch_is_accepted_by_schema_and_collector(path: Path):
    raw = path.read_bytes()
    assert _schema_verdict(json.loads(raw)) == set()
    assert _collector_verdict(raw) == set()


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_batch_is_refused_alike_by_schema_and_collector(path: Path):
    raw = path.read_bytes()
    refused_by_schema = _schema_verdict(json.loads(raw))
    assert refused_by_schema, "jsonschema accepts it: not a bad batch"
    assert _collector_verdict(raw) == refused_by_schema


def test_payload_bytes_are_the_one_rule_the_schema_cannot_state():
    """JSON Schema has no byte-size keyword: the schema's description names the limit."""
    batch = json.loads((CORPUS / "good" / "inference_full.json").read_bytes())
    batch["events"][0]["outputs"] = {"rows": [{"blob": "y" * MAX_PAYLOAD_BYTES}]}
    assert _schema_verdict(batch) == set()
    assert _collector_verdict(json.dumps(batch).encode()) == {0}
    assert str(MAX_PAYLOAD_BYTES) in load_schema()["description"]
