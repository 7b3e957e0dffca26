"""Joined rows -> the snapshot's frame, its content hash and its label distribution.

The content hash is defined over the rows, not the file: SHA-256 of a header naming
the columns (sorted by name) with their logical types, then one canonical JSON array
per row, rows sorted by (prediction id, event id) in code-point order. Integers,
strings and booleans print exactly and Python prints a float as the shortest string
that reads back to the same double, so the hash depends neither on Parquet writer
settings (compression, row groups, statistics) nor on the polars version.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

import polars as pl

HASH_ALGORITHM = "sha256/canonical-rows/v1"
"""Names the hash definition above; a new definition gets a new name."""

SORT_KEY = ("prediction_id", "event_id")

_LOGICAL_TYPES: dict[pl.DataType, str] = {
    pl.String(): "string",
    pl.Int64(): "int64",
    pl.Float64(): "float64",
    pl.Boolean(): "bool",
}
_POLARS_TYPES = {name: dtype for dtype, name in _LOGICAL_TYPES.items()}

_FIXED_SCHEMA: dict[str, str] = {
    "prediction_id": "string",
    "event_id": "string",
    "model": "string",
    "version": "string",
    "start_time_ns": "int64",
    "status": "string",
    "inputs": "string",
    "outputs": "string",
    # "label" goes here; its type depends on the labels (see `label_type`).
    "label_time_ns": "int64",
    "label_received_at_ns": "int64",
    "label_event_id": "string",
    "label_versions": "int64",
}

MAX_CLASSES = 50
"""Integer labels with more distinct values than this are summarised as numbers."""


def canonical_json(value: Any) -> str:
    """One spelling per JSON value: sorted keys, no spaces, non-ASCII kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def label_type(labels: Iterable[Any]) -> str:
    """The narrowest column type holding every label: bool, int64, float64, string or json.

    Plain values get a typed column a trainer can use directly; anything else (objects,
    lists, mixed kinds) is kept whole as canonical JSON text.
    """
    values = [v for v in labels if v is not None]
    if not values:
        return "string"
    if all(isinstance(v, bool) for v in values):
        return "bool"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "int64"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "float64"
    if all(isinstance(v, str) for v in values):
        return "string"
    return "json"


def _encode_label(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "json":
        return canonical_json(value)
    return float(value) if kind == "float64" else value


def snapshot_frame(model: str, rows: list[Mapping[str, Any]]) -> tuple[pl.DataFrame, str]:
    """The frame to write (canonically sorted) and how its labels are encoded.

    Inputs and outputs are kept whole as canonical JSON text, one row per prediction:
    flattening them the way `features_frame` does would drop nested values, give a
    prediction with several input rows several frame rows for one label, and make the
    schema depend on the payloads seen.
    """
    kind = label_type(row["label"] for row in rows)
    columns: dict[str, list[Any]] = {name: [] for name in _FIXED_SCHEMA}
    columns["label"] = []
    for row in rows:
        for name in _FIXED_SCHEMA:
            if name == "model":
                value: Any = model
            elif name in ("inputs", "outputs"):
                value = None if row[name] is None else canonical_json(row[name])
            else:
                value = row[name]
            columns[name].append(value)
        columns["label"].append(_encode_label(row["label"], kind))
    schema = {name: _POLARS_TYPES[t] for name, t in _FIXED_SCHEMA.items()}
    schema["label"] = _POLARS_TYPES["string" if kind == "json" else kind]
    order = [*list(_FIXED_SCHEMA)[:8], "label", *list(_FIXED_SCHEMA)[8:]]
    frame = pl.DataFrame(columns, schema={name: schema[name] for name in order})
    return frame.sort(list(SORT_KEY)), kind


def frame_schema(frame: pl.DataFrame) -> list[dict[str, str]]:
    """Column names and logical types in file order; raises ValueError on a foreign type."""
    schema = []
    for name, dtype in frame.schema.items():
        logical = _LOGICAL_TYPES.get(dtype)
        if logical is None:
            raise ValueError(f"column {name!r} has type {dtype}, not one a snapshot writes")
        schema.append({"name": name, "type": logical})
    return schema


def content_hash(frame: pl.DataFrame) -> str:
    """Hex SHA-256 of the rows under `HASH_ALGORITHM` (see the module docstring)."""
    schema = sorted((c["name"], c["type"]) for c in frame_schema(frame))
    names = [name for name, _ in schema]
    missing = [key for key in SORT_KEY if key not in names]
    if missing:
        raise ValueError(f"a snapshot frame needs the columns {missing}")
    digest = hashlib.sha256()
    digest.update(canonical_json({"algorithm": HASH_ALGORITHM, "columns": schema}).encode())
    digest.update(b"\n")
    key = [names.index(k) for k in SORT_KEY]
    rows = sorted(frame.select(names).iter_rows(), key=lambda r: tuple(r[i] or "" for i in key))
    for row in rows:
        # allow_nan: a NaN stays NaN (as the token NaN) instead of failing the export.
        line = json.dumps(list(row), separators=(",", ":"), ensure_ascii=False, allow_nan=True)
        digest.update(line.encode())
        digest.update(b"\n")
    return digest.hexdigest()


def label_distribution(frame: pl.DataFrame, kind: str) -> dict[str, Any]:
    """Counts per class for categorical labels, quantiles for numeric ones."""
    labels = frame.get_column("label").drop_nulls()
    if labels.len() == 0:
        return {"kind": "none", "count": 0}
    numeric = kind == "float64" or (kind == "int64" and labels.n_unique() > MAX_CLASSES)
    if numeric:
        values = labels.cast(pl.Float64)
        summary: dict[str, Any] = {"kind": "quantiles", "count": values.len()}
        summary["min"] = values.min()
        for q in (0.05, 0.25, 0.5, 0.75, 0.95):
            summary[f"p{round(q * 100):02d}"] = values.quantile(q, interpolation="linear")
        summary["max"] = values.max()
        summary["mean"] = values.mean()
        return summary
    counts: dict[str, int] = {}
    for value in labels.to_list():
        name = canonical_json(value) if kind in ("bool", "int64") else str(value)
        counts[name] = counts.get(name, 0) + 1
    return {"kind": "classes", "count": labels.len(), "counts": dict(sorted(counts.items()))}
