"""Turning frames into column samples: kind inference and the bulk, parallel sort.

`ReferenceProfile` holds the reference side of every comparison, built once (the
sorted values and counts) and reused for each window that is compared with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import polars as pl

from ._samples import ColumnKind, ColumnSample

# Evidently's `INTEGER_CARDINALITY_LIMIT`: integer columns with few values are labels.
INTEGER_CARDINALITY_LIMIT = 10


def to_polars(frame: Any) -> pl.DataFrame:
    """Accept polars or pandas frames (pandas through Arrow, no row loop)."""
    if isinstance(frame, pl.DataFrame):
        return frame
    return pl.from_pandas(frame)


def infer_kinds(frame: pl.DataFrame) -> dict[str, ColumnKind]:
    """Column kinds by Evidently's rules; columns of other types (text-like, nested,
    dates) are left out rather than guessed."""
    kinds: dict[str, ColumnKind] = {}
    for name, dtype in frame.schema.items():
        if dtype.is_float():
            kinds[name] = ColumnKind.NUMERICAL
        elif dtype.is_integer():
            few = frame[name].n_unique() <= INTEGER_CARDINALITY_LIMIT
            kinds[name] = ColumnKind.CATEGORICAL if few else ColumnKind.NUMERICAL
        elif dtype in (pl.Boolean, pl.Categorical) or isinstance(dtype, pl.Enum):
            kinds[name] = ColumnKind.CATEGORICAL
        elif dtype == pl.String:
            column = frame[name]
            if column.n_unique() <= 0.5 * max(column.count(), 1):
                kinds[name] = ColumnKind.CATEGORICAL
    return kinds


def samples_from_frame(
    frame: Any, kinds: Mapping[str, ColumnKind | str]
) -> dict[str, ColumnSample]:
    """Clean samples for the given columns; numerical ones are sorted in one parallel
    polars pass (the dominant cost of a window) instead of column by column."""
    frame = to_polars(frame)
    numerical = [c for c, k in kinds.items() if ColumnKind(k) is ColumnKind.NUMERICAL]
    samples: dict[str, ColumnSample] = {}
    if numerical:
        # strict=False: a value that is not a number counts as missing, not as a crash
        ordered = frame.select(
            pl.col(c).cast(pl.Float64, strict=False).sort(nulls_last=True) for c in numerical
        )
        for name in numerical:
            samples[name] = ColumnSample.from_sorted(_finite_slice(ordered[name]), len(frame))
    for name, kind in kinds.items():
        if ColumnKind(kind) is ColumnKind.CATEGORICAL:
            samples[name] = ColumnSample(frame[name], ColumnKind.CATEGORICAL)
    return {name: samples[name] for name in kinds}


def _finite_slice(ordered: pl.Series) -> np.ndarray:
    """Drop the nulls (last), -inf (first), +inf and NaN (sorted after +inf)."""
    values = ordered.head(len(ordered) - ordered.null_count()).to_numpy()
    low = np.searchsorted(values, -np.inf, side="right")
    high = np.searchsorted(values, np.inf, side="left")
    return values[low:high]


class ReferenceProfile:
    """The reference side of drift comparisons, computed once per reference dataset."""

    def __init__(self, samples: Mapping[str, ColumnSample]) -> None:
        self.samples = dict(samples)

    @classmethod
    def from_frame(
        cls,
        frame: Any,
        kinds: Mapping[str, ColumnKind | str] | None = None,
        *,
        columns: Iterable[str] | None = None,
    ) -> ReferenceProfile:
        frame = to_polars(frame)
        if kinds is None:
            kinds = infer_kinds(frame)
        if columns is not None:
            wanted = set(columns)
            kinds = {c: k for c, k in kinds.items() if c in wanted}
        samples = samples_from_frame(frame, kinds)
        for sample in samples.values():  # warm the caches every window will need
            if sample.kind is ColumnKind.NUMERICAL:
                _ = sample.std, sample.nunique
            else:
                _ = sample.counts
        return cls(samples)

    @property
    def kinds(self) -> dict[str, ColumnKind]:
        return {name: sample.kind for name, sample in self.samples.items()}

    @property
    def n_rows(self) -> int:
        return max((s.n for s in self.samples.values()), default=0)
