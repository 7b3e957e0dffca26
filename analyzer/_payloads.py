"""Event payloads (`inputs` / `outputs` of the event contract) -> feature frames.

`rows` payloads give one frame row per payload row; `summary` payloads (tensors too
large to keep) give one row per event with a column per summary statistic, e.g.
`f0.mean`, `f0.std`, so tensor summaries drift like any other numerical feature.
Numeric vectors in rows (embeddings) become `name[0]`, `name[1]`, ... columns, which
the analyzer tests together as one embedding.
Output columns are prefixed `output.` so that prediction drift is told apart.
`calls_frame` keeps the per-call columns (latency, status) for performance checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import polars as pl

OUTPUT_PREFIX = "output."
PREDICTION_ID = "__prediction_id"


def payload_rows(payload: Any, prediction_id: str) -> list[dict[str, Any]]:
    """Flat rows of one payload, each tagged with the event's prediction id."""
    if not isinstance(payload, Mapping):
        return []
    rows = payload.get("rows")
    if isinstance(rows, list):
        return [
            {**_flat_row(row), PREDICTION_ID: prediction_id}
            for row in rows
            if isinstance(row, Mapping)
        ]
    summary = payload.get("summary")
    if isinstance(summary, Mapping) and isinstance(summary.get("features"), Mapping):
        flat: dict[str, Any] = {PREDICTION_ID: prediction_id}
        for feature, stats in summary["features"].items():
            if isinstance(stats, Mapping):
                for stat, value in stats.items():
                    flat[f"{feature}.{stat}"] = _scalar(value)
        return [flat]
    return []


MAX_VECTOR = 2048


def _flat_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """Scalars as they are; numeric vectors (embeddings) spread to `name[i]` columns."""
    flat: dict[str, Any] = {}
    for key, value in row.items():
        if (
            isinstance(value, list)
            and 0 < len(value) <= MAX_VECTOR
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        ):
            flat.update({f"{key}[{i}]": float(v) for i, v in enumerate(value)})
        else:
            flat[key] = _scalar(value)
    return flat


def _scalar(value: Any) -> Any:
    # Lists and objects are not features the drift tests can compare; keep scalars only.
    return value if isinstance(value, str | int | float | bool) or value is None else None


def features_frame(events: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """Inputs and outputs of events side by side (outputs prefixed), one row per input row.

    When an event's outputs have as many rows as its inputs they are aligned row by
    row; otherwise each output row is kept in its own frame row.
    """
    records: list[dict[str, Any]] = []
    for event in events:
        pid = str(event.get("prediction_id", ""))
        inputs = payload_rows(event.get("inputs"), pid)
        outputs = [
            {(OUTPUT_PREFIX + k if k != PREDICTION_ID else k): v for k, v in row.items()}
            for row in payload_rows(event.get("outputs"), pid)
        ]
        if inputs and len(inputs) == len(outputs):
            records.extend({**i, **o} for i, o in zip(inputs, outputs, strict=True))
        else:
            records.extend(inputs)
            records.extend(outputs)
    if not records:
        return pl.DataFrame()
    return pl.DataFrame(records, infer_schema_length=None, strict=False)


def output_column(name: str) -> bool:
    return name.startswith(OUTPUT_PREFIX)


def calls_frame(events: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """The per-call columns of stored events (`store.window_events`) that performance
    checks use."""
    events = list(events)
    return pl.DataFrame(
        {
            "start_time_ns": [e["start_time_ns"] for e in events],
            "latency_ns": [e["latency_ns"] for e in events],
            "device_time_ns": [e["device_time_ns"] for e in events],
            "status": [e["status"] for e in events],
        },
        schema={
            "start_time_ns": pl.Int64,
            "latency_ns": pl.Int64,
            "device_time_ns": pl.Int64,
            "status": pl.String,
        },
    )
