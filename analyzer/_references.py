"""Pinned reference datasets: uploaded from Parquet or CSV, kept as Parquet files under
the data dir, registered in `drift_references`. The CLI/API upload calls
`register_reference`; the analyzer asks `inferloop.store.active_reference` which applies.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy.engine import Engine

from inferloop.store.references import pin_reference, set_reference_path

from ._profile import infer_kinds, to_polars
from ._samples import ColumnKind


class ReferenceDataError(ValueError):
    """The reference data itself is unusable (format, empty, columns): the user's to fix."""


def read_table(source: str | Path) -> pl.DataFrame:
    """A Parquet or CSV file (by extension) as a frame."""
    path = Path(source)
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pl.read_parquet(path)
        if suffix in (".csv", ".txt"):
            return pl.read_csv(path, infer_schema_length=10_000)
    except (OSError, pl.exceptions.PolarsError) as error:
        raise ReferenceDataError(f"cannot read {path.name!r}: {error}") from error
    raise ReferenceDataError(f"unsupported reference file {path.name!r}: use .parquet or .csv")


def register_reference(
    engine: Engine,
    data_dir: str | Path,
    model: str,
    source: str | Path | Any,
    *,
    version: str | None = None,
    name: str | None = None,
    kinds: Mapping[str, ColumnKind | str] | None = None,
    now_ns: int | None = None,
) -> int:
    """Pin `source` (a path, or a polars/pandas frame) as the drift reference of `model`
    (and `version`, or every version when None); earlier references of the same scope
    stop being active. Returns the reference id."""
    frame = read_table(source) if isinstance(source, str | Path) else to_polars(source)
    if frame.is_empty():
        raise ReferenceDataError("a reference dataset needs rows")
    column_kinds = {c: ColumnKind(k).value for c, k in (kinds or infer_kinds(frame)).items()}
    unknown = set(column_kinds) - set(frame.columns)
    if unknown:
        raise ReferenceDataError(f"kinds given for columns not in the data: {sorted(unknown)}")
    now_ns = time.time_ns() if now_ns is None else now_ns
    folder = Path(data_dir) / "references"
    folder.mkdir(parents=True, exist_ok=True)
    with engine.begin() as connection:
        reference_id = pin_reference(
            connection,
            model=model,
            version=version,
            name=name or (Path(source).name if isinstance(source, str | Path) else "frame"),
            rows=len(frame),
            column_kinds=column_kinds,
            created_at_ns=now_ns,
        )
        path = folder / f"reference-{reference_id}.parquet"
        frame.select(list(column_kinds)).write_parquet(path)
        set_reference_path(connection, reference_id, str(path.resolve()))
    return reference_id
