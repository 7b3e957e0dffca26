"""Turning model inputs and outputs into JSON-able payloads, on the worker thread only.

A payload is `{"rows": [...]}` (small batches, one flat object per row) or `{"summary": ...}`
(shape, dtype and per-feature statistics) for what is too large to keep row by row.
numpy, torch, pandas and polars are recognised by duck typing and never imported here.
"""

from __future__ import annotations

import hashlib
import math
import sys
from collections.abc import Callable, Mapping
from typing import Any

Extractor = Callable[[Any, int], "dict[str, Any] | None"]

MAX_FEATURES_PER_ROW = 64
_SCALARS = (int, float, str, bool, type(None))


class _Unset:
    """Marks an input/output that the caller did not set explicitly (None is a real value)."""

    def __repr__(self) -> str:
        return "<unset>"


UNSET: Any = _Unset()
_extractors: list[tuple[Callable[[Any], bool], Extractor]] = []


def register_extractor(
    match: type | Callable[[Any], bool], extractor: Extractor
) -> Callable[[], None]:
    """Teach the SDK a payload type: `extractor(value, max_rows) -> payload | None`.

    `match` is a type (isinstance test) or a predicate. Registered extractors are tried
    before the built-in ones, newest first. Returns a function that unregisters it.
    """
    if isinstance(match, type):
        kind = match
        entry = (lambda value: isinstance(value, kind), extractor)
    else:
        entry = (match, extractor)
    _extractors.insert(0, entry)

    def unregister() -> None:
        if entry in _extractors:
            _extractors.remove(entry)

    return unregister


def is_scalar(value: Any) -> bool:
    return isinstance(value, _SCALARS) or (
        hasattr(value, "item") and getattr(value, "ndim", None) == 0
    )


def _scalar(value: Any) -> Any:
    if isinstance(value, _SCALARS):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value
    item = getattr(value, "item", None)
    if callable(item):
        return _scalar(item())
    return str(value)


def _module_of(value: Any) -> str:
    return type(value).__module__.partition(".")[0]


def _to_numpy(value: Any) -> Any:
    """A numpy view of a numpy array or torch tensor (copied to host on the worker if on GPU)."""
    module = _module_of(value)
    if module == "torch":
        tensor = value.detach()
        if tensor.device.type != "cpu":
            tensor = tensor.cpu()  # synchronises the worker thread only
        if str(tensor.dtype) in ("torch.bfloat16", "torch.float16"):
            tensor = tensor.float()
        return tensor.numpy()
    return value


def _dtype_name(value: Any) -> str:
    return str(getattr(value, "dtype", type(value).__name__)).removeprefix("torch.")


def _array_payload(value: Any, max_rows: int) -> dict[str, Any]:
    array = _to_numpy(value)
    shape = list(array.shape)
    if array.ndim == 0:
        return {"rows": [{"value": _scalar(array)}]}
    if array.ndim == 1 and shape[0] <= max_rows:
        return {"rows": [{"value": _scalar(item)} for item in array.tolist()]}
    if array.ndim == 2 and shape[0] <= max_rows and shape[1] <= MAX_FEATURES_PER_ROW:
        return {
            "rows": [
                {f"f{index}": _scalar(item) for index, item in enumerate(row)}
                for row in array.tolist()
            ]
        }
    matrix = array.reshape(shape[0], -1) if array.ndim >= 2 else array.reshape(-1, 1)
    if array.ndim > 2:
        matrix = array.reshape(
            -1, 1
        )  # one statistic over all elements: trailing dims are not features
    names = [f"f{index}" for index in range(matrix.shape[1])] if array.ndim == 2 else ["value"]
    return {
        "summary": {
            "shape": shape,
            "dtype": _dtype_name(value),
            "features": _column_stats(matrix, names),
        }
    }


def _column_stats(matrix: Any, names: list[str]) -> dict[str, dict[str, Any]]:
    """Mean, std, min, max and NaN count per column, vectorised with numpy."""
    import numpy as np

    if matrix.dtype.kind not in "biuf":
        return {name: {"count": int(matrix.shape[0])} for name in names}
    data = matrix.astype(np.float64, copy=False)
    nan_counts = np.isnan(data).sum(axis=0) if data.dtype.kind == "f" else np.zeros(data.shape[1])
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            stats = {
                "mean": np.nanmean(data, axis=0),
                "std": np.nanstd(data, axis=0),
                "min": np.nanmin(data, axis=0),
                "max": np.nanmax(data, axis=0),
            }
    columns: dict[str, dict[str, Any]] = {}
    for index, name in enumerate(names):
        column = {key: _scalar(float(values[index])) for key, values in stats.items()}
        column["nan"] = int(nan_counts[index])
        columns[name] = column
    return columns


def _rows_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Summary of many dict rows without numpy: numeric statistics per feature."""
    features: dict[str, dict[str, Any]] = {}
    names = {name for row in rows[:100] for name in row}
    for name in sorted(names)[: MAX_FEATURES_PER_ROW * 4]:
        values = [row.get(name) for row in rows]
        numbers = [
            float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)
        ]
        finite = [v for v in numbers if math.isfinite(v)]
        if finite:
            mean = sum(finite) / len(finite)
            std = math.sqrt(sum((v - mean) ** 2 for v in finite) / len(finite))
            features[name] = {
                "mean": mean,
                "std": std,
                "min": min(finite),
                "max": max(finite),
                "nan": len(numbers) - len(finite),
            }
        else:
            features[name] = {"count": sum(v is not None for v in values)}
    return {"summary": {"shape": [len(rows), len(names)], "dtype": "rows", "features": features}}


def _rows_payload(rows: list[dict[str, Any]], max_rows: int) -> dict[str, Any]:
    if len(rows) <= max_rows:
        return {
            "rows": [
                {str(k): _scalar(v) if is_scalar(v) else str(v) for k, v in row.items()}
                for row in rows
            ]
        }
    return _rows_summary(rows)


def _mapping_payload(value: Mapping[str, Any], max_rows: int) -> dict[str, Any]:
    """A dict of named features: one row of scalars, or columns of equal length."""
    if all(is_scalar(item) for item in value.values()):
        return {"rows": [{str(k): _scalar(v) for k, v in value.items()}]}
    lengths = {batch_size(item) for item in value.values() if not is_scalar(item)}
    if len(lengths) == 1:
        (length,) = lengths
        if length is not None and length <= max_rows:
            columns = {
                k: (_to_list(v) if not is_scalar(v) else [v] * length) for k, v in value.items()
            }
            return {
                "rows": [
                    {str(k): _scalar(col[i]) for k, col in columns.items()} for i in range(length)
                ]
            }
        if length is not None:
            columns = {k: _to_list(v) for k, v in value.items() if not is_scalar(v)}
            rows = [{k: col[i] for k, col in columns.items()} for i in range(length)]
            return _rows_summary(rows)
    return {
        "rows": [{str(k): (_scalar(v) if is_scalar(v) else _describe(v)) for k, v in value.items()}]
    }


def _to_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    return list(_to_numpy(value).tolist()) if hasattr(value, "shape") else list(value)


def _describe(value: Any) -> str:
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"{_dtype_name(value)}{list(shape)}"
    return type(value).__name__


def extract(value: Any, max_rows: int) -> dict[str, Any] | None:
    """The payload of one input or output value, or None when nothing useful can be said."""
    for match, extractor in _extractors:
        if match(value):
            return extractor(value, max_rows)
    if value is None:
        return None
    if is_scalar(value):
        return {"rows": [{"value": _scalar(value)}]}
    module = _module_of(value)
    if module in ("numpy", "torch") and hasattr(value, "shape"):
        return _array_payload(value, max_rows)
    if module == "pandas":
        if hasattr(value, "columns"):  # DataFrame
            if len(value) <= max_rows:
                return _rows_payload(value.to_dict("records"), max_rows)
            numeric = value.select_dtypes("number")
            payload = _array_payload(numeric.to_numpy(), 0) if numeric.shape[1] else {"summary": {}}
            features = payload["summary"].get("features", {})
            payload["summary"]["features"] = {
                str(name): features.get(f"f{index}") for index, name in enumerate(numeric.columns)
            }
            payload["summary"]["shape"] = list(value.shape)
            payload["summary"]["dtype"] = "dataframe"
            return payload
        return _rows_payload([value.to_dict()], max_rows)  # a Series is one row
    if module == "polars":
        if hasattr(value, "columns"):
            if value.height <= max_rows:
                return _rows_payload(value.to_dicts(), max_rows)
            return _rows_summary(value.head(10_000).to_dicts()) | {}
        return _rows_payload([{value.name: item} for item in value.to_list()], max_rows)
    if isinstance(value, Mapping):
        return _mapping_payload(value, max_rows)
    if isinstance(value, (list, tuple)):
        if not value:
            return {"rows": []}
        first = value[0]
        if isinstance(first, Mapping):
            return _rows_payload([dict(row) for row in value], max_rows)
        if is_scalar(first):
            if len(value) <= max_rows:
                return {"rows": [{"value": _scalar(item)} for item in value]}
            return _rows_summary([{"value": item} for item in value])
        if isinstance(first, (list, tuple)):
            if len(value) <= max_rows and len(first) <= MAX_FEATURES_PER_ROW:
                return {"rows": [{f"f{i}": _scalar(v) for i, v in enumerate(row)} for row in value]}
            return _rows_summary([{f"f{i}": v for i, v in enumerate(row)} for row in value])
        return (
            extract(first, max_rows)
            if len(value) == 1
            else {"rows": [{"value": _describe(v)} for v in value[:max_rows]]}
        )
    return {"rows": [{"value": _describe(value)}]}


def batch_size(value: Any) -> int | None:
    """Rows in a value: first dimension of arrays/tensors/frames, length of lists, 1 for a dict row."""
    if value is None or is_scalar(value):
        return None
    shape = getattr(value, "shape", None)
    if shape is not None:
        try:
            return int(shape[0]) if len(shape) else 1
        except (TypeError, IndexError):
            return None
    if isinstance(value, Mapping):
        sizes = {batch_size(item) for item in value.values()}
        sizes.discard(None)
        return sizes.pop() if len(sizes) == 1 else 1
    if isinstance(value, (list, tuple)):
        return len(value)
    return None


def device_of(value: Any) -> str | None:
    """The device of the first tensor found (top level, or one level inside lists and dicts)."""
    device = getattr(value, "device", None)
    if device is not None and _module_of(value) == "torch":
        return str(device)
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        for item in value[:8]:
            device = getattr(item, "device", None)
            if device is not None and _module_of(item) == "torch":
                return str(device)
    return None


def torch_loaded() -> bool:
    return "torch" in sys.modules


class Redaction:
    """Drops or hashes named fields in rows and summaries, then applies the user's hook."""

    def __init__(
        self, fields: Mapping[str, str], salt: str, hook: Callable[[dict[str, Any]], Any] | None
    ):
        self._fields = dict(fields)
        self._salt = salt.encode()
        self._hook = hook

    @property
    def active(self) -> bool:
        return bool(self._fields) or self._hook is not None

    def _hash(self, value: Any) -> str:
        return hashlib.sha256(self._salt + str(value).encode()).hexdigest()[:16]

    def _row(self, row: dict[str, Any]) -> dict[str, Any]:
        for name, action in self._fields.items():
            if name in row:
                if action == "drop":
                    del row[name]
                else:
                    row[name] = self._hash(row[name])
        return row

    def apply(self, payload: dict[str, Any] | None) -> dict[str, Any] | None:
        if payload is None:
            return None
        if self._fields:
            for row in payload.get("rows", ()):
                self._row(row)
            features = payload.get("summary", {}).get("features")
            if features:
                for name in self._fields:
                    features.pop(name, None)  # statistics of a sensitive field are dropped
        if self._hook is not None:
            payload = self._hook(payload)
        return payload


def cap_size(
    payload: dict[str, Any] | None, max_bytes: int, dumps: Callable[[Any], bytes]
) -> dict[str, Any] | None:
    """Keep a payload under max_bytes: fewer rows first, then only the shape of a summary."""
    if payload is None:
        return None
    size = len(dumps(payload))
    if size <= max_bytes:
        return payload
    rows = payload.get("rows")
    if rows:
        kept = list(rows)
        while kept and len(dumps({"rows": kept})) > max_bytes:
            kept = kept[: len(kept) // 2]
        if kept:
            return {"rows": kept, "truncated": True}
        return {"rows": [], "truncated": True}
    summary = payload.get("summary") or {}
    small = {
        "summary": {"shape": summary.get("shape"), "dtype": summary.get("dtype")},
        "truncated": True,
    }
    return small if len(dumps(small)) <= max_bytes else {"truncated": True}
