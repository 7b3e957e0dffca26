"""Drift of embeddings and tensor summaries, treated as many numerical components.

`ratio` is Evidently's embedding method of the same name (share of components whose
normed Wasserstein distance reaches 0.1; drift when the share exceeds 0.2).
`calibrated` asks for components that are significant after Holm correction across
all components *and* moved by at least `min_effect` (normed Wasserstein).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import polars as pl

from ._drift import DriftOptions, alarming_columns, compute_drift
from ._profile import ReferenceProfile
from ._samples import ColumnKind


def embedding_groups(columns: Any) -> dict[str, list[str]]:
    """Columns named `name[i]` (vectors spread out by the payload reader), by `name`."""
    groups: dict[str, list[str]] = {}
    for column in columns:
        if column.endswith("]") and "[" in column:
            groups.setdefault(column[: column.rindex("[")], []).append(column)
    return groups


def embedding_frame(matrix: Any, prefix: str = "e") -> pl.DataFrame:
    """One numerical column per component of an (rows × dims) matrix."""
    array = np.asarray(matrix, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError("embeddings must be a 2-D array (rows × dimensions)")
    return pl.DataFrame({f"{prefix}{i}": array[:, i] for i in range(array.shape[1])})


def embedding_profile(reference: Any, prefix: str = "e") -> ReferenceProfile:
    frame = embedding_frame(reference, prefix)
    return ReferenceProfile.from_frame(frame, dict.fromkeys(frame.columns, ColumnKind.NUMERICAL))


@dataclass(frozen=True)
class EmbeddingDrift:
    method: str
    share: float
    drifted: bool
    components: tuple[str, ...]
    """The components that moved (evidence)."""


def embedding_drift(
    reference: ReferenceProfile | Any,
    current: Any,
    *,
    method: Literal["ratio", "calibrated"] = "calibrated",
    threshold: float | None = None,
    min_effect: float = 0.1,
    family_alpha: float = 0.01,
) -> EmbeddingDrift:
    profile = reference if isinstance(reference, ReferenceProfile) else embedding_profile(reference)
    frame = current if isinstance(current, pl.DataFrame) else embedding_frame(current)
    dims = len(profile.samples)
    if method == "ratio":
        options = DriftOptions(mode="evidently", num_test="wasserstein", threshold=0.1)
        report = compute_drift(profile, frame, options)
        moved = [c.column for c in report.columns if c.drifted]
        share = len(moved) / dims
        return EmbeddingDrift(
            "ratio", share, share > (0.2 if threshold is None else threshold), tuple(moved)
        )
    if method == "calibrated":
        options = DriftOptions(num_test="ks", min_effect=min_effect, family_alpha=family_alpha)
        report = compute_drift(profile, frame, options)
        moved = [c.column for c in alarming_columns(report, options)]
        share = len(moved) / dims
        return EmbeddingDrift(
            "calibrated", share, share > (0.0 if threshold is None else threshold), tuple(moved)
        )
    raise ValueError("method must be 'ratio' or 'calibrated'")
