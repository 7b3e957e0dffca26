"""Drift of a window against a reference profile: test selection, per-column verdicts,
dataset drift, and the rule that turns verdicts into alarms.

Two modes. `evidently` reproduces Evidently 0.7.23's default test selection
(`_get_default_stattest` in `legacy/calculations/stattests/registry.py`) and verdicts.
`calibrated` (the default) uses tests whose false-alarm rate on data without drift is
the nominal one, and reports an effect size next to each p-value so that an alarm needs
both significance (Holm-corrected over the columns of a window) and a material change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl

from ._profile import ReferenceProfile, samples_from_frame, to_polars
from ._samples import ColumnKind, ColumnSample, union_nunique
from ._stattests import get_stattest, jensenshannon_test, wasserstein_test

DriftMode = Literal["calibrated", "evidently"]

DISCRETE_VALUES_LIMIT = 100
"""Calibrated mode: numerical columns with at most this many distinct values are
compared value by value (pooled chi-square), as K-S with heavy ties alarms too rarely."""


@dataclass(frozen=True, kw_only=True)
class DriftOptions:
    """How columns are compared. Per-column settings win over per-kind over global ones."""

    mode: DriftMode = "calibrated"
    drift_share: float = 0.5
    test: str | None = None
    num_test: str | None = None
    cat_test: str | None = None
    threshold: float | None = None
    num_threshold: float | None = None
    cat_threshold: float | None = None
    per_column_test: Mapping[str, str] = field(default_factory=dict)
    per_column_threshold: Mapping[str, float] = field(default_factory=dict)
    min_effect: float = 0.1
    family_alpha: float = 0.001

    def __post_init__(self) -> None:
        if self.mode not in ("calibrated", "evidently"):
            raise ValueError("mode must be 'calibrated' or 'evidently'")
        if not 0 < self.drift_share <= 1:
            raise ValueError("drift_share must be in (0, 1]")
        if self.min_effect < 0 or not 0 < self.family_alpha < 1:
            raise ValueError("min_effect must be ≥ 0 and family_alpha in (0, 1)")
        for name in [self.test, self.num_test, self.cat_test, *self.per_column_test.values()]:
            if name is not None:
                get_stattest(name)  # fail at construction on unknown names


@dataclass(frozen=True)
class ColumnDrift:
    """One column's comparison: the test, its outcome and (calibrated mode) effect size."""

    column: str
    kind: ColumnKind
    test: str
    threshold: float
    score_kind: str
    statistic: float
    score: float
    drifted: bool
    effect_name: str
    effect: float
    reference_rows: int
    current_rows: int


@dataclass(frozen=True)
class DriftReport:
    mode: DriftMode
    columns: tuple[ColumnDrift, ...]
    drifted_count: int
    drifted_share: float
    dataset_drift: bool

    def column(self, name: str) -> ColumnDrift:
        return next(c for c in self.columns if c.column == name)


def select_stattest(
    reference: ColumnSample, current: ColumnSample, kind: ColumnKind | str, mode: DriftMode
) -> str:
    """The default test for a column, by kind, reference size and number of values."""
    kind = ColumnKind(kind)
    if mode == "evidently":
        n_values = union_nunique(reference, current)
        if reference.n <= 1000:
            if kind is ColumnKind.NUMERICAL and n_values > 5:
                return "ks"
            return "chisquare" if n_values > 2 else "z"
        if kind is ColumnKind.NUMERICAL and n_values > 5:
            return "wasserstein"
        return "jensenshannon"
    n_values = union_nunique(reference, current, exact_up_to=DISCRETE_VALUES_LIMIT)
    if n_values <= 2:
        return "z"
    if kind is ColumnKind.NUMERICAL and n_values > DISCRETE_VALUES_LIMIT:
        return "ks"
    # few distinct values: K-S would be conservative (ties), a pooled chi-square is not
    return "chi2_contingency"


def compute_drift(
    reference: ReferenceProfile, current: Any, options: DriftOptions | None = None
) -> DriftReport:
    """Compare every reference column present in `current` (a polars or pandas frame)."""
    options = options or DriftOptions()
    frame = to_polars(current)
    kinds = {c: k for c, k in reference.kinds.items() if c in frame.columns}
    frame = _labels_typed_like_reference(frame, reference, kinds)
    current_samples = samples_from_frame(frame, kinds)
    results = []
    for name, kind in kinds.items():
        ref, cur = reference.samples[name], current_samples[name]
        if ref.n == 0 or cur.n == 0:
            continue  # Evidently refuses empty columns; the data-quality checks report them
        results.append(_compare_column(name, kind, ref, cur, options))
    drifted = sum(r.drifted for r in results)
    share = drifted / len(results) if results else 0.0
    return DriftReport(
        options.mode, tuple(results), drifted, share, bool(results) and share >= options.drift_share
    )


def _labels_typed_like_reference(frame, reference: ReferenceProfile, kinds) -> Any:
    """Labels compare by value, so a window that sends `1` where the reference had `"1"`
    is cast to the reference's type (what cannot be cast counts as missing)."""
    casts = []
    for name, kind in kinds.items():
        dtype = reference.samples[name].label_dtype
        if kind is ColumnKind.CATEGORICAL and dtype not in (None, pl.Null, frame.schema[name]):
            casts.append(pl.col(name).cast(dtype, strict=False))
    return frame.with_columns(casts) if casts else frame


def _compare_column(
    name: str, kind: ColumnKind, ref: ColumnSample, cur: ColumnSample, options: DriftOptions
) -> ColumnDrift:
    numerical = kind is ColumnKind.NUMERICAL
    test_name = (
        options.per_column_test.get(name)
        or (options.num_test if numerical else options.cat_test)
        or options.test
        or select_stattest(ref, cur, kind, options.mode)
    )
    test = get_stattest(test_name)
    threshold = _first_set(
        options.per_column_threshold.get(name),
        options.num_threshold if numerical else options.cat_threshold,
        options.threshold,
        test.default_threshold,
    )
    result = test.func(ref, cur, kind, threshold)
    effect_name, effect = _effect_size(ref, cur, kind, test.name, result.score)
    cur.__dict__.pop("_cdf_gap", None)  # the merged arrays are large; free them now
    return ColumnDrift(
        name,
        kind,
        test.name,
        threshold,
        test.score_kind,
        result.statistic,
        result.score,
        bool(result.drifted),
        effect_name,
        effect,
        ref.n,
        cur.n,
    )


def _first_set(*values: float | None) -> float:
    return next(v for v in values if v is not None)


def _effect_size(
    ref: ColumnSample, cur: ColumnSample, kind: ColumnKind, test_name: str, score: float
) -> tuple[str, float]:
    """A distance that says how much changed, whatever the sample size."""
    if test_name in ("wasserstein", "jensenshannon", "psi"):
        return test_name, score
    if kind is ColumnKind.NUMERICAL and ref.nunique > 5:
        return "wasserstein", wasserstein_test(ref, cur, kind, 0.1).score
    return "jensenshannon", jensenshannon_test(ref, cur, kind, 0.1).score


def holm_adjusted(p_values: list[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (family-wise error control, any dependence)."""
    k = len(p_values)
    if k == 0:
        return []
    order = np.argsort(p_values)
    scaled = np.asarray(p_values, dtype=float)[order] * (k - np.arange(k))
    adjusted_sorted = np.minimum(np.maximum.accumulate(scaled), 1.0)
    adjusted = np.empty(k)
    adjusted[order] = adjusted_sorted
    return adjusted.tolist()


def alarming_columns(report: DriftReport, options: DriftOptions | None = None) -> list[ColumnDrift]:
    """Columns that warrant a finding.

    Evidently mode: every drifted column (Evidently's verdicts, noisy on small windows).
    Calibrated mode: a p-value test must survive Holm correction over the window's
    columns and its effect must reach `min_effect`; distance tests chosen explicitly
    alarm on their own threshold.
    """
    options = options or DriftOptions()
    if report.mode == "evidently":
        return [c for c in report.columns if c.drifted]
    tested = [c for c in report.columns if c.score_kind == "p_value"]
    adjusted = dict(
        zip([c.column for c in tested], holm_adjusted([c.score for c in tested]), strict=True)
    )
    alarms = []
    for col in report.columns:
        if col.score_kind == "distance":
            if col.drifted:
                alarms.append(col)
        elif adjusted[col.column] < options.family_alpha and col.effect >= options.min_effect:
            alarms.append(col)
    return alarms
