"""Pinned reference datasets: uploaded from Parquet or CSV, kept as Parquet files under
the data dir, registered in `drift_references`. The CLI/API upload calls
`register_reference`; the analyzer asks `active_reference` which one applies.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from inferloop.store.analysis import DriftReference

from ._profile import infer_kinds, to_polars
from ._samples import ColumnKind

_REFERENCES = DriftReference.__table__


def read_table(source: str | Path) -> pl.DataFrame:
    """A Parquet or CSV file (by extension) as a frame."""
    path = Path(source)
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pl.read_parquet(path)
    if suffix in (".csv", ".txt"):
        return pl.read_csv(path, infer_schema_length=10_000)
    raise ValueError(f"unsupported reference file {path.name!r}: use .parquet or .csv")


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
        raise ValueError("a reference dataset needs rows")
    column_kinds = {c: ColumnKind(k).value for c, k in (kinds or infer_kinds(frame)).items()}
    unknown = set(column_kinds) - set(frame.columns)
    if unknown:
        raise ValueError(f"kinds given for columns not in the data: {sorted(unknown)}")
    now_ns = time.time_ns() if now_ns is None else now_ns
    folder = Path(data_dir) / "references"
    folder.mkdir(parents=True, exist_ok=True)
    with engine.begin() as connection:
        scope = [_REFERENCES.c.model == model, _version_is(version)]
        connection.execute(sa.update(_REFERENCES).where(*scope).values(active=False))
        reference_id = connection.execute(
            sa.insert(_REFERENCES).returning(_REFERENCES.c.id),
            {
                "model": model,
                "version": version,
                "name": name or (Path(source).name if isinstance(source, str | Path) else "frame"),
                "path": "",
                "rows": len(frame),
                "column_kinds": column_kinds,
                "created_at_ns": now_ns,
                "active": True,
            },
        ).scalar_one()
        path = folder / f"reference-{reference_id}.parquet"
        frame.select(list(column_kinds)).write_parquet(path)
        connection.execute(
            sa.update(_REFERENCES)
            .where(_REFERENCES.c.id == reference_id)
            .values(path=str(path.resolve()))
        )
    return reference_id


def _version_is(version: str | None):
    return _REFERENCES.c.version.is_(None) if version is None else _REFERENCES.c.version == version


def active_reference(connection: sa.Connection, model: str, version: str | None) -> sa.Row | None:
    """The version's own active reference, else the model-wide one."""
    for scope in ([version] if version is not None else []) + [None]:
        row = connection.execute(
            sa.select(_REFERENCES)
            .where(_REFERENCES.c.model == model, _version_is(scope), _REFERENCES.c.active.is_(True))
            .order_by(_REFERENCES.c.id.desc())
            .limit(1)
        ).first()
        if row is not None:
            return row
    return None
