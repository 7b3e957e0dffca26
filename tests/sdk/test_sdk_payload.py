"""Payload extraction, summaries, redaction and the size cap (worker-side functions)."""

from __future__ import annotations

import math

import pytest

from inferloop.sdk import MemoryTransport, configure, flush, monitor
from inferloop.sdk import stats as sdk_stats
from inferloop.sdk._payload import Redaction, batch_size, cap_size, device_of, extract
from inferloop.sdk._serialize import dumps


def test_dict_of_named_features_is_one_row() -> None:
    assert extract({"age": 31, "country": "fr", "vip": True}, 16) == {
        "rows": [{"age": 31, "country": "fr", "vip": True}]
    }


def test_dict_of_columns_becomes_rows() -> None:
    assert extract({"age": [31, 40], "country": ["fr", "de"]}, 16) == {
        "rows": [{"age": 31, "country": "fr"}, {"age": 40, "country": "de"}]
    }


def test_small_numpy_batch_kept_row_by_row() -> None:
    np = pytest.importorskip("numpy")
    payload = extract(np.arange(6, dtype=np.float32).reshape(3, 2), 16)
    assert payload == {
        "rows": [{"f0": 0.0, "f1": 1.0}, {"f0": 2.0, "f1": 3.0}, {"f0": 4.0, "f1": 5.0}]
    }


def test_large_array_summarised_per_feature() -> None:
    np = pytest.importorskip("numpy")
    data = np.random.default_rng(0).normal(size=(500, 4)).astype(np.float32)
    data[0, 1] = np.nan
    payload = extract(data, 16)
    summary = payload["summary"]
    assert summary["shape"] == [500, 4] and summary["dtype"] == "float32"
    f0 = summary["features"]["f0"]
    assert f0["mean"] == pytest.approx(float(data[:, 0].mean()), rel=1e-5)
    assert f0["std"] == pytest.approx(float(data[:, 0].std()), rel=1e-4)
    assert f0["min"] == pytest.approx(float(data[:, 0].min()))
    assert f0["max"] == pytest.approx(float(data[:, 0].max()))
    assert summary["features"]["f1"]["nan"] == 1
    assert summary["features"]["f1"]["mean"] == pytest.approx(
        float(np.nanmean(data[:, 1])), rel=1e-5
    )


def test_torch_tensor_summarised_and_device_reported() -> None:
    torch = pytest.importorskip("torch")
    tensor = torch.ones(32, 16)
    payload = extract(tensor, 16)
    assert payload["summary"]["shape"] == [32, 16]
    assert payload["summary"]["dtype"] == "float32"
    assert payload["summary"]["features"]["f15"] == {
        "mean": 1.0,
        "std": 0.0,
        "min": 1.0,
        "max": 1.0,
        "nan": 0,
    }
    assert device_of(tensor) == "cpu"
    assert device_of({"x": tensor}) == "cpu"
    assert batch_size(tensor) == 32


def test_lists_of_scalars_rows_and_vectors() -> None:
    assert extract([1, 2], 16) == {"rows": [{"value": 1}, {"value": 2}]}
    assert extract([{"a": 1}, {"a": 2}], 16) == {"rows": [{"a": 1}, {"a": 2}]}
    assert extract([[1, 2], [3, 4]], 16) == {"rows": [{"f0": 1, "f1": 2}, {"f0": 3, "f1": 4}]}
    summary = extract(list(range(100)), 16)["summary"]
    assert summary["features"]["value"]["mean"] == pytest.approx(49.5)


def test_pandas_and_polars_rows() -> None:
    pd = pytest.importorskip("pandas")
    pl = pytest.importorskip("polars")
    frame = pd.DataFrame({"age": [31, 40], "country": ["fr", "de"]})
    assert extract(frame, 16) == {
        "rows": [{"age": 31, "country": "fr"}, {"age": 40, "country": "de"}]
    }
    assert extract(frame.iloc[0], 16) == {"rows": [{"age": 31, "country": "fr"}]}
    assert batch_size(frame) == 2
    big = pd.DataFrame({"age": range(100), "country": ["fr"] * 100})
    summary = extract(big, 16)["summary"]
    assert summary["shape"] == [100, 2]
    assert summary["features"]["age"]["mean"] == pytest.approx(49.5)
    polars_frame = pl.DataFrame({"age": [31, 40], "country": ["fr", "de"]})
    assert extract(polars_frame, 16) == {
        "rows": [{"age": 31, "country": "fr"}, {"age": 40, "country": "de"}]
    }
    assert batch_size(polars_frame) == 2


def test_non_finite_floats_become_null() -> None:
    assert extract({"a": math.nan, "b": math.inf}, 16) == {"rows": [{"a": None, "b": None}]}


def test_redaction_drops_and_hashes_fields() -> None:
    redaction = Redaction({"ssn": "drop", "email": "hash"}, salt="pepper", hook=None)
    payload = redaction.apply({"rows": [{"ssn": "123", "email": "a@b.c", "age": 31}]})
    row = payload["rows"][0]
    assert "ssn" not in row and row["age"] == 31
    assert row["email"] != "a@b.c" and len(row["email"]) == 16
    again = redaction.apply({"rows": [{"email": "a@b.c"}]})["rows"][0]["email"]
    assert again == row["email"]  # stable, so the platform can still group by it


def test_redaction_hook_and_fields_applied_to_emitted_events() -> None:
    def hook(payload):
        for row in payload.get("rows", []):
            row.pop("secret", None)
        return payload

    transport = configure(
        transport="memory", flush_interval_s=0.01, redact=hook, redact_fields={"email": "hash"}
    )
    assert isinstance(transport, MemoryTransport)

    @monitor(model="m")
    def predict(row):
        return {"score": 1.0, "secret": "s"}

    predict({"email": "a@b.c", "secret": "s", "age": 3})
    assert flush(5)
    (event,) = transport.events
    assert set(event["inputs"]["rows"][0]) == {"email", "age"}
    assert event["inputs"]["rows"][0]["email"] != "a@b.c"
    assert event["outputs"] == {"rows": [{"score": 1.0}]}


def test_payload_size_cap_truncates_rows_then_summary() -> None:
    rows = {"rows": [{"text": "x" * 100} for _ in range(50)]}
    capped = cap_size(rows, 1_000, dumps)
    assert capped["truncated"] is True
    assert 0 < len(capped["rows"]) < 50
    assert len(dumps(capped)) <= 1_000
    summary = {
        "summary": {
            "shape": [5, 500],
            "dtype": "float32",
            "features": {f"f{i}": {"mean": 1.0} for i in range(500)},
        }
    }
    capped = cap_size(summary, 200, dumps)
    assert capped == {"summary": {"shape": [5, 500], "dtype": "float32"}, "truncated": True}


def test_size_cap_applied_to_emitted_events() -> None:
    transport = configure(transport="memory", flush_interval_s=0.01, payload_max_bytes=300)

    @monitor(model="m")
    def predict(rows):
        return None

    predict([{"text": "y" * 50} for _ in range(10)])
    assert flush(5)
    (event,) = transport.events
    assert event["inputs"]["truncated"] is True
    assert len(dumps(event["inputs"])) <= 300
    assert event["batch_size"] == 10  # inferred from the full input, not the truncated one


def test_an_integer_beyond_64_bits_is_delivered_not_dropped() -> None:
    # orjson refuses such integers; the encoder falls back to `json` for that event alone.
    transport = configure(transport="memory", flush_interval_s=0.01)
    predict = monitor(model="wide")(lambda a, b: 0)
    predict(2**64, -(2**63) - 1)
    predict(1, 2)
    assert flush(5)
    assert sdk_stats()["dropped"] == {}
    assert len(transport.events) == 2
    assert b'{"a":18446744073709551616,"b":-9223372036854775809}' in transport.raw[0]
    assert dumps({"n": 2**70}) == b'{"n":1180591620717411303424}'
