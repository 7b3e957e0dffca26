"""Contract v2 (columnar batches): published schema, SDK output and collector agree.

``sdk/schema/batch-v2.json`` is generated from the collector's msgspec types; batches the
SDK really emits validate against it and are read by the collector as exactly the events
that the SDK's own expansion (what users' tests see) says; broken variants are refused
alike by jsonschema and by the collector, down to the refused event.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferloop.collector import columnar_values, validate_batch
from inferloop.collector.contract import (
    EVENT_COLUMNS,
    columnar_event_id,
    columnar_prediction_id,
    emitter_bits,
)
from inferloop.collector.contract_schema import REGENERATE_COLUMNAR, schema_text
from inferloop.sdk import (
    COLUMNAR_SCHEMA_PATH,
    MemoryTransport,
    configure,
    events_of,
    flush,
    load_schema,
    monitor,
    shutdown,
)

WHOLE_BATCH = -1
COLUMN_FIELDS = ("seq", "start_ns", "latency_ns", "prediction_id", "inputs", "outputs")


@pytest.fixture
def emitted() -> list[bytes]:
    """v2 batches as the SDK sends them: positional scalars, a 16-feature dict, given ids."""
    transport = configure(transport="memory", flush_interval_s=0.01)
    assert isinstance(transport, MemoryTransport)
    score = monitor(model="fraud", version="3", tags={"region": "eu"})(lambda a, b, c: a * b)
    rank = monitor(model="rank")(lambda features: {"score": 0.5, "label": "x"})
    given = monitor(model="given", prediction_id="request_id")(lambda x, request_id: x)
    for i in range(50):
        score(i, 0.5, "fr")
        rank({f"f{k}": float(i * k) for k in range(16)})
        given(i, f"req-{i}")
    rank({f"f{k}": float("nan") for k in range(16)})
    assert flush(5)
    shutdown(1)
    raws = list(transport.raw)
    assert {json.loads(raw)["schema_version"] for raw in raws} == {2}
    return raws


def _schema_verdict(batch: Any) -> set[int]:
    """Indexes of the events jsonschema refuses; WHOLE_BATCH for an error outside a column."""
    validator = jsonschema.Draft202012Validator(load_schema(2))
    refused = set()
    for error in validator.iter_errors(batch):
        # An `anyOf` (columns or null) fails as a whole; its deepest branch error says where.
        path = max(
            (list(sub.absolute_path) for sub in error.context or [error]), key=len, default=[]
        )
        if path and path[0] in ("inputs", "outputs") and len(path) == 3:
            refused.add(path[2])
        elif len(path) == 2 and path[0] in COLUMN_FIELDS and isinstance(path[1], int):
            refused.add(path[1])
        else:
            refused.add(WHOLE_BATCH)
    return refused


def _collector_verdict(batch: Any) -> set[int]:
    raw = json.dumps(batch).encode()
    return {rejection.event_index for rejection in validate_batch(raw).rejections}


def test_published_columnar_schema_is_the_one_generated_from_the_collector_contract():
    assert COLUMNAR_SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(2), (
        f"sdk/schema/batch-v2.json is out of date; regenerate it: {REGENERATE_COLUMNAR}"
    )
    jsonschema.Draft202012Validator.check_schema(load_schema(2))


def test_emitted_columnar_batches_validate_against_the_published_schema(emitted):
    validator = jsonschema.Draft202012Validator(load_schema(2))
    for raw in emitted:
        assert list(validator.iter_errors(json.loads(raw))) == []


def test_collector_stores_exactly_the_events_the_sdk_expansion_shows(emitted):
    for raw in emitted:
        validated = validate_batch(raw)
        assert validated.rejections == []
        stored = [dict(zip(EVENT_COLUMNS, row, strict=True)) for row in validated.rows]
        expected = events_of(raw)
        assert len(stored) == len(expected) > 0
        for row, event in zip(stored, expected, strict=True):
            for name in EVENT_COLUMNS:
                if name == "received_at_ns":
                    continue
                value = row[name]
                if name in ("inputs", "outputs", "tags"):
                    value = None if value is None else json.loads(value)
                assert value == event[name], name


def test_columnar_events_read_like_their_v1_counterparts(emitted):
    events = [event for raw in emitted for event in events_of(raw)]
    by_model = {}
    for event in events:
        by_model.setdefault(event["model"], []).append(event)
    fraud = by_model["fraud"][0]
    assert fraud["inputs"] == {"rows": [{"a": 0, "b": 0.5, "c": "fr"}]}
    assert fraud["outputs"] == {"rows": [{"value": 0.0}]}
    assert fraud["tags"] == {"region": "eu"} and fraud["version"] == "3"
    assert by_model["rank"][0]["outputs"] == {"rows": [{"score": 0.5, "label": "x"}]}
    assert by_model["rank"][-1]["inputs"]["rows"][0]["f3"] is None  # NaN, as v1 writes it
    # The caller's own prediction ids stay strings; the argument is not a feature.
    assert [e["prediction_id"] for e in by_model["given"]][:2] == ["req-0", "req-1"]
    assert by_model["given"][0]["inputs"] == {"rows": [{"value": 0}]}
    assert sorted(e["seq"] for e in events) == list(range(len(events)))
    assert len({e["event_id"] for e in events}) == len(events)


def _broken(batch: dict[str, Any], how: str) -> dict[str, Any]:
    bad = copy.deepcopy(batch)
    if how == "latency_negative_at_1":
        bad["latency_ns"][1] = -1
    elif how == "seq_a_string_at_2":
        bad["seq"][2] = "x"
    elif how == "input_not_a_scalar_at_0":
        name = next(iter(bad["inputs"]))
        bad["inputs"][name][0] = {"nested": 1}
    elif how == "prediction_id_too_long_at_3":
        bad["prediction_id"][3] = "p" * 201
    elif how == "missing_model":
        del bad["model"]
    elif how == "device_too_long":
        bad["device"] = "d" * 65
    elif how == "tags_value_not_a_string":
        bad["tags"] = {"a": 1}
    elif how == "two_bad_events":
        bad["latency_ns"][0] = -5
        bad["start_ns"][4] = 1.5
    return bad


@pytest.mark.parametrize(
    "how",
    [
        "latency_negative_at_1",
        "seq_a_string_at_2",
        "input_not_a_scalar_at_0",
        "prediction_id_too_long_at_3",
        "missing_model",
        "device_too_long",
        "tags_value_not_a_string",
        "two_bad_events",
    ],
)
def test_broken_columnar_batch_is_refused_alike_by_schema_and_collector(emitted, how):
    batch = json.loads(emitted[0])
    assert len(batch["seq"]) >= 5
    bad = _broken(batch, how)
    refused = _schema_verdict(bad)
    assert refused, "jsonschema accepts it: not a bad batch"
    assert _collector_verdict(bad) == refused


def test_the_collector_alone_checks_that_every_array_has_one_item_per_event(emitted):
    """JSON Schema cannot relate array lengths: its description names the rule."""
    batch = json.loads(emitted[0])
    batch["latency_ns"].pop()
    assert _schema_verdict(batch) == set()
    assert _collector_verdict(batch) == {WHOLE_BATCH}
    assert "one item per event" in load_schema(2)["description"]


def test_an_invalid_v2_envelope_names_the_schema_version():
    validated = validate_batch(b'{"schema_version": 2, "emitter_id": "e", "events": []}')
    [rejection] = validated.rejections
    assert rejection.event_index == WHOLE_BATCH and "schema_version" in rejection.reason


def test_a_batch_encoded_in_pieces_reads_whole() -> None:
    """Columns longer than ENCODE_PIECE are encoded piece by piece, the GIL let go between."""
    from inferloop.sdk._columns import ENCODE_PIECE

    calls = 3 * ENCODE_PIECE + 7
    transport = configure(
        transport="memory", flush_interval_s=10.0, batch_size=calls, queue_size=calls + 1
    )
    score = monitor(model="pieces")(lambda a, b: a)
    for i in range(calls - 1):
        score(i, float(i))
    score(calls - 1, float(calls - 1))  # reaches the batch size: one drain, one batch
    assert flush(5)
    shutdown(1)
    [raw] = transport.raw
    validator = jsonschema.Draft202012Validator(load_schema(2))
    assert list(validator.iter_errors(json.loads(raw))) == []
    validated = validate_batch(raw)
    assert validated.rejections == [] and len(validated.rows) == calls
    assert [json.loads(row[14])["rows"][0]["a"] for row in validated.rows] == list(range(calls))


_INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    _INT64,
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),  # commas, quotes, backslashes, '%' and non-ASCII included
)


def _both_passes(derive):
    """What `derive()` gives with `_columnar`'s C calls and with the Python passes; the C
    module must be built here (it is wherever the tests run)."""
    assert columnar_values._columnar is not None, "collector/_columnar.c was not built"
    results = []
    for native in (True, False):
        columnar_values.use_native = native
        try:
            results.append(derive())
        finally:
            columnar_values.use_native = True
    return results


@settings(max_examples=200, deadline=None)
@given(
    emitter=st.text(min_size=1, max_size=64),
    events=st.lists(
        st.tuples(_INT64, st.integers(min_value=0, max_value=2**63 - 1)), min_size=1, max_size=40
    ),
)
def test_bulk_event_ids_are_the_ids_of_each_event(emitter, events):
    """The collector writes a v2 batch's ids in bulk (C, or numpy without it): the same as
    one format per event for any start time in int64 (negative too) and any sequence
    number, 2**32 and above."""
    starts, seqs = map(list, zip(*events, strict=True))
    bits = emitter_bits(emitter)
    expected = [columnar_event_id(bits, start, seq) for start, seq in events]
    assert _both_passes(lambda: columnar_values.event_ids(emitter, starts, seqs)) == [expected] * 2


@settings(max_examples=200, deadline=None)
@given(
    emitter=st.text(min_size=1, max_size=64),  # non-ASCII too: the C call hands those back
    refs=st.lists(
        st.one_of(st.integers(min_value=0, max_value=2**63 - 1), st.text(max_size=20)),
        min_size=1,
    ),
)
def test_bulk_prediction_ids_are_those_of_each_event(emitter, refs):
    expected = [
        ref if isinstance(ref, str) else columnar_prediction_id(emitter, ref) for ref in refs
    ]
    assert _both_passes(lambda: columnar_values.prediction_ids(emitter, refs)) == [expected] * 2


@settings(max_examples=200, deadline=None)
@given(
    names=st.lists(st.text(max_size=8), max_size=5, unique=True),
    count=st.integers(min_value=1, max_value=20),
    data=st.data(),
)
def test_bulk_payloads_are_each_events_row_encoded(names, count, data):
    """Each event's payload from the columns' values is byte for byte `{"rows": [row]}`
    as the encoder writes it, whatever the names (`%`, quotes) and values (commas)."""
    columns = {name: data.draw(st.lists(_SCALAR, min_size=count, max_size=count)) for name in names}
    expected = [
        msgspec.json.encode({"rows": [{name: column[i] for name, column in columns.items()}]})
        for i in range(count)
    ]
    assert _both_passes(lambda: columnar_values.payloads(columns, count)) == [expected] * 2
