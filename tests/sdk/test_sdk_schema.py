"""Emitted batches validate against the published JSON Schema (sdk/schema/batch-v1.json)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from typing import Any

import pytest

from inferloop.sdk import SCHEMA_PATH, configure, flush, load_schema, log_label, monitor


def _python_with_jsonschema() -> str | None:
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = shutil.which("python3", path=directory)
        if candidate and os.path.realpath(candidate) != os.path.realpath(sys.executable):
            probe = subprocess.run([candidate, "-c", "import jsonschema"], capture_output=True, timeout=30)
            if probe.returncode == 0:
                return candidate
    return None


def _validate_all(batches: list[dict[str, Any]]) -> list[str]:
    """Validate with jsonschema: in this interpreter if installed, else another python on PATH
    that has it, else the minimal validator below (covers every keyword our schema uses)."""
    try:
        import jsonschema
    except ImportError:
        other = _python_with_jsonschema()
        if other is None:
            schema = load_schema()
            return [error for batch in batches for error in _minimal_errors(batch, schema, schema)]
        script = (
            "import json,sys,jsonschema\n"
            "schema=json.load(open(sys.argv[1]))\n"
            "jsonschema.Draft202012Validator.check_schema(schema)\n"
            "v=jsonschema.Draft202012Validator(schema)\n"
            "errs=[e.message for b in json.load(sys.stdin) for e in v.iter_errors(b)]\n"
            "print(json.dumps(errs))\n"
        )
        result = subprocess.run([other, "-c", script, str(SCHEMA_PATH)],
                                input=json.dumps(batches), capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    return [error.message for batch in batches for error in validator.iter_errors(batch)]


_TYPES = {
    "object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
    "integer": int, "number": (int, float),
}


def _is_type(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[name])


def _minimal_errors(value: Any, schema: Any, root: dict[str, Any], path: str = "$") -> list[str]:
    """A small draft 2020-12 subset: type, const, enum, required, properties,
    additionalProperties, items, minItems, minimum, minLength, maxLength, pattern, oneOf, $ref."""
    if schema is True or schema == {}:
        return []
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return _minimal_errors(value, target, root, path)
    errors: list[str] = []
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else types
        if not any(_is_type(value, name) for name in names):
            return [f"{path}: {value!r} is not of type {types}"]
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path}: expected {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in {schema['enum']}")
    if "oneOf" in schema:
        matches = sum(not _minimal_errors(value, option, root, path) for option in schema["oneOf"])
        if matches != 1:
            errors.append(f"{path}: matches {matches} of oneOf")
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{path}: {name!r} is a required property")
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in properties:
                errors += _minimal_errors(item, properties[name], root, f"{path}.{name}")
            elif extra is False:
                errors.append(f"{path}: additional property {name!r}")
            elif isinstance(extra, dict):
                errors += _minimal_errors(item, extra, root, f"{path}.{name}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{path}: too few items")
        if "items" in schema:
            for index, item in enumerate(value):
                errors += _minimal_errors(item, schema["items"], root, f"{path}[{index}]")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", 1 << 62):
            errors.append(f"{path}: length out of bounds")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{path}: does not match {schema['pattern']}")
    if _is_type(value, "number") and "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{path}: below minimum")
    return errors


def test_schema_is_draft_2020_12_and_shipped_with_package() -> None:
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA_PATH.name == "batch-v1.json"


def test_emitted_batches_validate_against_schema() -> None:
    np = pytest.importorskip("numpy")
    torch = pytest.importorskip("torch")
    transport = configure(transport="memory", flush_interval_s=0.01, queue_size=8, payload_max_bytes=400)
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


def test_minimal_validator_agrees_on_good_and_bad_batches() -> None:
    """The fallback validator is only trusted because it catches what jsonschema catches."""
    transport = configure(transport="memory", flush_interval_s=0.01)
    monitor(model="m")(lambda x: x)(1)
    assert flush(5)
    schema = load_schema()
    good = transport.batches[0]
    assert _minimal_errors(good, schema, schema) == []
    bad = json.loads(json.dumps(good))
    bad["events"][0]["latency_ns"] = -1
    bad["events"][0]["event_id"] = "not-hex"
    bad["events"][0]["surprise"] = 1
    assert len(_minimal_errors(bad, schema, schema)) >= 1
