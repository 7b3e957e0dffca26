"""Data-quality checks of a window against the reference: missing values, categories
never seen in the reference, numerical values outside the reference's range.

Each issue needs a minimum share of rows and a significant excess over what the
reference itself would produce by chance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from ._performance import hypergeom_upper
from ._profile import ReferenceProfile, to_polars
from ._samples import ColumnKind


@dataclass(frozen=True, kw_only=True)
class DataQualityOptions:
    alpha: float = 0.01
    min_share: float = 0.01
    """An issue must touch at least this share of the window's rows."""
    examples: int = 5


@dataclass(frozen=True)
class DataQualityIssue:
    column: str
    check: str  # "missing_values" | "new_categories" | "out_of_range"
    share: float
    reference_share: float
    p_value: float
    examples: tuple[Any, ...] = ()


def data_quality(
    reference: ReferenceProfile, current: Any, options: DataQualityOptions | None = None
) -> list[DataQualityIssue]:
    options = options or DataQualityOptions()
    frame = to_polars(current)
    issues: list[DataQualityIssue] = []
    rows = len(frame)
    if rows == 0:
        return issues
    for name, ref in reference.samples.items():
        if name not in frame.columns:
            issues.append(DataQualityIssue(name, "missing_column", 1.0, 0.0, 0.0))
            continue
        column = frame[name]
        if ref.kind is ColumnKind.NUMERICAL:  # "n/a" in a numerical column is a missing value
            column = column.cast(pl.Float64, strict=False)
        issues += _missing(name, column, ref.total, ref.total - ref.n, options)
        if ref.kind is ColumnKind.CATEGORICAL:
            issues += _new_categories(name, column, set(ref.counts), options)
        elif ref.n:
            issues += _out_of_range(name, column, ref.sorted[0], ref.sorted[-1], ref.n, options)
    return issues


def _missing(
    name, column: pl.Series, ref_total: int, ref_missing: int, options
) -> list[DataQualityIssue]:
    missing = column.null_count()
    if column.dtype.is_float():
        missing += int((~column.drop_nulls().is_finite()).sum())
    share = missing / len(column)
    if share < options.min_share or ref_total == 0:
        return []
    ref_share = ref_missing / ref_total
    p_value = hypergeom_upper(missing, missing + ref_missing, ref_total, len(column))
    if p_value >= options.alpha:
        return []
    return [DataQualityIssue(name, "missing_values", share, ref_share, p_value)]


def _new_categories(name, column: pl.Series, known: set, options) -> list[DataQualityIssue]:
    values = column.drop_nulls()
    if values.dtype.is_float():
        values = values.filter(values.is_finite())
    if len(values) == 0:
        return []
    counts = values.value_counts(sort=True)
    unseen = [(k, c) for k, c in counts.iter_rows() if k not in known]
    share = sum(c for _, c in unseen) / len(column)
    if share < options.min_share:
        return []
    # A category absent from the reference cannot appear by chance at this share: the
    # share itself is the evidence; the p-value is that of seeing none of it in the
    # reference if it were that common (≈ 0 for any sizeable reference).
    return [
        DataQualityIssue(
            name, "new_categories", share, 0.0, 0.0, tuple(k for k, _ in unseen[: options.examples])
        )
    ]


def _out_of_range(
    name, column: pl.Series, low: float, high: float, ref_n: int, options
) -> list[DataQualityIssue]:
    values = column.cast(pl.Float64, strict=False).drop_nulls()
    values = values.filter(values.is_finite()).to_numpy()
    if values.size == 0:
        return []
    outside = values[(values < low) | (values > high)]
    share = outside.size / len(column)
    if share < options.min_share:
        return []
    # With no change, a new value falls outside the reference's range with probability
    # 2 / (n + 1) (exchangeability); test the excess with a binomial tail.
    expected = 2.0 / (ref_n + 1)
    p_value = float(stats.binom.sf(outside.size - 1, values.size, expected))
    if p_value >= options.alpha:
        return []
    examples = tuple(float(v) for v in np.unique(outside)[: options.examples])
    return [DataQualityIssue(name, "out_of_range", share, expected, p_value, examples)]
