"""Evidently renders the human view of a drift finding: its HTML report of the window.

The statistics come from the analyzer's own tests; Evidently is only asked to draw,
on row samples (its report builds charts for every column and is slow on big frames).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy.engine import Engine

from inferloop.store.findings import set_report_path

from ._profile import to_polars
from ._samples import ColumnKind

REPORT_MAX_ROWS = 20_000


def _sample(frame: pl.DataFrame, rows: int, seed: int) -> pl.DataFrame:
    return frame if len(frame) <= rows else frame.sample(rows, seed=seed)


def render_drift_report(
    reference: Any,
    current: Any,
    kinds: Mapping[str, ColumnKind | str],
    path: str | Path,
    *,
    max_rows: int = REPORT_MAX_ROWS,
    seed: int = 0,
) -> Path:
    """Write Evidently's DataDriftPreset report of `current` against `reference` as HTML."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    columns = [
        c for c in kinds if c in to_polars(current).columns and c in to_polars(reference).columns
    ]
    numerical = [c for c in columns if ColumnKind(kinds[c]) is ColumnKind.NUMERICAL]
    categorical = [c for c in columns if ColumnKind(kinds[c]) is ColumnKind.CATEGORICAL]
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)

    def dataset(frame: Any) -> Any:
        sampled = _sample(to_polars(frame).select(columns), max_rows, seed).to_pandas()
        for name in categorical:  # Evidently wants labels as objects, not Arrow strings
            sampled[name] = sampled[name].astype(object)
        return Dataset.from_pandas(sampled, data_definition=definition)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Evidently and plotly warn about pandas internals
        snapshot = Report([DataDriftPreset()]).run(dataset(current), dataset(reference))
        snapshot.save_html(str(path))
    return path


def store_drift_report(
    engine: Engine,
    finding_id: int,
    reports_dir: str | Path,
    reference: Any,
    current: Any,
    kinds: Mapping[str, ColumnKind | str],
) -> Path:
    """Render the report of a drift finding under `reports_dir` and record its path on the
    finding (`findings.report_path`), which the dashboard route serves."""
    path = Path(reports_dir) / f"finding-{finding_id}.html"
    temporary = path.with_suffix(".html.tmp")
    render_drift_report(reference, current, kinds, temporary)
    temporary.replace(path)  # readers never see a half-written file
    with engine.begin() as connection:
        set_report_path(connection, finding_id, str(path.resolve()))
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    return path
