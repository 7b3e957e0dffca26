"""One column's clean values plus the summaries that drift tests need, computed lazily.

A reference sample is built once and reused for every window (sorting 100k values per
column again for each window is most of the cost Evidently pays). Values are cleaned the
way Evidently cleans them: nulls, NaN and ±inf are dropped before any test runs.
"""

from __future__ import annotations

import math
from enum import StrEnum
from functools import cached_property
from typing import Any

import numpy as np
import polars as pl


class ColumnKind(StrEnum):
    """How a column is compared: as numbers or as labels (binary is a two-label case)."""

    NUMERICAL = "numerical"
    CATEGORICAL = "categorical"


class ColumnSample:
    """Clean values of one column, with sorted values, counts and moments cached."""

    def __init__(self, values: Any, kind: ColumnKind | str) -> None:
        self.kind = ColumnKind(kind)
        self.total = len(values)
        """Rows before cleaning: `total - n` values were missing or not finite."""
        if self.kind is ColumnKind.NUMERICAL:
            self._values: np.ndarray | pl.Series = _finite_floats(values)
        else:
            self._values = _labels(values)

    @classmethod
    def from_sorted(cls, ordered: np.ndarray, total: int | None = None) -> ColumnSample:
        """A numerical sample from values already cleaned and sorted (bulk path)."""
        sample = cls.__new__(cls)
        sample.kind = ColumnKind.NUMERICAL
        sample._values = ordered
        sample.total = len(ordered) if total is None else total
        sample.__dict__["sorted"] = ordered
        return sample

    @property
    def n(self) -> int:
        return len(self._values)

    @property
    def label_dtype(self) -> pl.DataType | None:
        """The polars type of a categorical sample's labels (None for numerical ones)."""
        return self._values.dtype if isinstance(self._values, pl.Series) else None

    @cached_property
    def sorted(self) -> np.ndarray:
        """Ascending values (numerical columns only)."""
        self._require_numerical()
        return np.sort(self._values)

    @cached_property
    def counts(self) -> dict[Any, int]:
        """Value -> number of occurrences, for label-style tests."""
        if self.kind is ColumnKind.NUMERICAL:
            ordered = self.sorted
            if ordered.size == 0:
                return {}
            starts = np.concatenate(([0], np.flatnonzero(np.diff(ordered)) + 1))
            sizes = np.diff(np.concatenate((starts, [ordered.size])))
            return dict(zip(ordered[starts].tolist(), sizes.tolist(), strict=True))
        frame = self._values.value_counts(sort=False)
        return dict(zip(frame[:, 0].to_list(), frame[:, 1].to_list(), strict=True))

    @cached_property
    def nunique(self) -> int:
        if self.kind is ColumnKind.NUMERICAL:
            ordered = self.sorted
            return 0 if ordered.size == 0 else int(np.count_nonzero(np.diff(ordered))) + 1
        return len(self.counts)

    @cached_property
    def std(self) -> float:
        """Population standard deviation (ddof=0), as Evidently's normed Wasserstein uses."""
        self._require_numerical()
        return float(np.std(self._values)) if self.n else float("nan")

    @cached_property
    def mean(self) -> float:
        self._require_numerical()
        return float(np.mean(self._values)) if self.n else float("nan")

    def _require_numerical(self) -> None:
        if self.kind is not ColumnKind.NUMERICAL:
            raise TypeError("this summary exists for numerical columns only")


def as_sample(values: Any, kind: ColumnKind | str) -> ColumnSample:
    """Accept a ready sample or anything array-like (list, numpy, pandas, polars)."""
    if isinstance(values, ColumnSample):
        return values
    return ColumnSample(values, kind)


def union_nunique(reference: ColumnSample, current: ColumnSample, exact_up_to: int = 5) -> int:
    """Distinct values across both samples, as `pd.concat([ref, cur]).nunique()`.

    Exact up to `exact_up_to`; above it a lower bound (the reference's own count), which
    is all the selection rules need and spares counting a large numerical window.
    """
    if reference.kind is ColumnKind.NUMERICAL and reference.nunique > exact_up_to:
        return reference.nunique
    return len(reference.counts.keys() | current.counts.keys())


def _finite_floats(values: Any) -> np.ndarray:
    if isinstance(values, pl.Series):
        array = values.cast(pl.Float64, strict=False).to_numpy()  # unparsable -> missing
    else:
        array = np.asarray(getattr(values, "to_numpy", lambda: values)(), dtype=np.float64)
    array = np.ascontiguousarray(array, dtype=np.float64)
    finite = np.isfinite(array)
    return array if finite.all() else array[finite]


def _labels(values: Any) -> pl.Series:
    if isinstance(values, pl.Series):
        series = values.drop_nulls()
    else:
        kept = [v for v in _iter_values(values) if v is not None and not _is_bad_float(v)]
        series = pl.Series(kept)
    if series.dtype.is_float():
        series = series.filter(series.is_finite())
    return series


def _is_bad_float(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def _iter_values(values: Any):
    to_list = getattr(values, "tolist", None)
    return to_list() if to_list is not None else values
