"""Labeled dataset snapshots: immutable Parquet exports of predictions joined to labels.

A snapshot is a folder named by its content hash holding `data.parquet`, then
`manifest.json`. The data file is written first and the manifest last, so a folder
without a manifest is an incomplete snapshot, never a wrong one. On a local path both
are written into a hidden temporary folder that is then renamed into place (one atomic
step), so a crash leaves no half snapshot under the final name; on an object store
(any URL pyarrow's filesystems open: s3://, gs://, abfs://, hdfs://, file://) the files
are written in that order under the final name. An existing folder is never written
into: the export is refused with `SnapshotExistsError`, which names the snapshot there.

The export is a pure function of the store as of `label_as_of_ns` (see
`inferloop.store.labeled_rows`): re-exporting with the same cutoff gives the same rows
and the same hash, and a label received after the cutoff changes nothing. The cutoff
may not lie in the future, where later arrivals could still count.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.fs as pafs
import sqlalchemy as sa

from inferloop.store.labeled_rows import JoinPolicy, labeled_row_counts, labeled_rows

from ._snapshot_frame import (
    HASH_ALGORITHM,
    content_hash,
    frame_schema,
    label_distribution,
    snapshot_frame,
)

SNAPSHOT_DATA_FILE = "data.parquet"
SNAPSHOT_MANIFEST_FILE = "manifest.json"
SNAPSHOT_FORMAT_VERSION = 1
JOIN_POLICIES: tuple[JoinPolicy, ...] = ("latest", "earliest")
"""`latest`: the newest label version is in force (corrections win); `earliest`: the first."""


class SnapshotError(Exception):
    """A snapshot could not be written or read."""


class SnapshotExistsError(SnapshotError):
    """The snapshot's folder already exists; snapshots are never overwritten."""

    def __init__(self, uri: str) -> None:
        super().__init__(f"snapshot {uri} already exists; snapshots are immutable")
        self.uri = uri


class SnapshotIntegrityError(SnapshotError):
    """The data does not match its manifest (tampered, truncated or incomplete)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A written or verified snapshot: where it is, its manifest, and (when read) its rows."""

    uri: str
    manifest: dict[str, Any]
    frame: pl.DataFrame | None = None

    @property
    def content_hash(self) -> str:
        return str(self.manifest["content_hash"])


def export_snapshot(
    engine: sa.Engine,
    *,
    model: str,
    versions: Sequence[str] | None = None,
    start_ns: int,
    end_ns: int,
    label_as_of_ns: int,
    destination: str | os.PathLike[str],
    join_policy: JoinPolicy = "latest",
    include_unlabeled: bool = False,
    clock: Callable[[], int] = time.time_ns,
) -> Snapshot:
    """Write the predictions of `model` started in [start_ns, end_ns) with their labels.

    `destination` is a directory or URL under which the snapshot's folder is created.
    Only labeled predictions are written unless `include_unlabeled`; the manifest
    counts both either way. `clock` (Unix ns) stamps the manifest and bounds the cutoff.
    """
    now_ns = clock()
    _validate(model, versions, start_ns, end_ns, label_as_of_ns, join_policy, now_ns)
    chosen = None if versions is None else sorted(set(versions))
    with engine.connect() as connection:
        rows = labeled_rows(
            connection,
            model=model,
            versions=chosen,
            start_ns=start_ns,
            end_ns=end_ns,
            label_as_of_ns=label_as_of_ns,
            policy=join_policy,
            labeled_only=not include_unlabeled,
        )
        counts = labeled_row_counts(
            connection,
            model=model,
            versions=chosen,
            start_ns=start_ns,
            end_ns=end_ns,
            label_as_of_ns=label_as_of_ns,
        )
    frame, label_kind = snapshot_frame(model, rows)
    digest = content_hash(frame)
    labeled = frame.filter(pl.col("label_event_id").is_not_null())
    manifest = {
        "format_version": SNAPSHOT_FORMAT_VERSION,
        "content_hash": digest,
        "hash_algorithm": HASH_ALGORITHM,
        "model": model,
        "versions": chosen,
        "time_range": {"start_ns": start_ns, "end_ns": end_ns, "end_exclusive": True},
        "label_as_of_ns": label_as_of_ns,
        "join_policy": join_policy,
        "include_unlabeled": include_unlabeled,
        "prediction_count": counts.predictions,
        "labeled_count": counts.labeled,
        "row_count": frame.height,
        "label_version_count": int(labeled.get_column("label_versions").sum() or 0),
        "corrected_count": labeled.filter(pl.col("label_versions") > 1).height,
        "label_encoding": label_kind,
        "label_distribution": label_distribution(frame, label_kind),
        "schema": frame_schema(frame),
        "data_file": SNAPSHOT_DATA_FILE,
        "created_at_ns": now_ns,
        "created_at": datetime.fromtimestamp(now_ns / 1e9, UTC).isoformat(),
    }
    uri = _write(str(destination), digest, frame, manifest)
    return Snapshot(uri=uri, manifest=manifest)


def read_snapshot(path: str | os.PathLike[str]) -> Snapshot:
    """Read a snapshot folder and verify its rows against the manifest's content hash.

    Raises `SnapshotIntegrityError` when the manifest is missing (an incomplete
    snapshot), the data file is missing or unreadable, or the rows do not hash to it.
    """
    location = str(path)
    manifest_bytes = _read_bytes(location, SNAPSHOT_MANIFEST_FILE)
    if manifest_bytes is None:
        raise SnapshotIntegrityError(f"{location} has no {SNAPSHOT_MANIFEST_FILE}: incomplete")
    try:
        manifest = json.loads(manifest_bytes)
        expected = manifest["content_hash"]
    except (ValueError, KeyError, TypeError) as error:
        raise SnapshotIntegrityError(f"{location}: unreadable manifest ({error})") from error
    data_bytes = _read_bytes(location, manifest.get("data_file", SNAPSHOT_DATA_FILE))
    if data_bytes is None:
        raise SnapshotIntegrityError(f"{location} has a manifest but no data file")
    try:
        frame = pl.read_parquet(io.BytesIO(data_bytes))
        actual = content_hash(frame)
    except Exception as error:  # any failure to decode is a damaged file, not a bug here
        raise SnapshotIntegrityError(f"{location}: unreadable data file ({error})") from error
    if actual != expected:
        raise SnapshotIntegrityError(
            f"{location}: rows hash to {actual}, the manifest says {expected}; "
            "the data was changed after export"
        )
    if frame.height != manifest.get("row_count"):
        raise SnapshotIntegrityError(f"{location}: {frame.height} rows, manifest says otherwise")
    return Snapshot(uri=location, manifest=manifest, frame=frame)


def _validate(
    model: str,
    versions: Sequence[str] | None,
    start_ns: int,
    end_ns: int,
    label_as_of_ns: int,
    join_policy: str,
    now_ns: int,
) -> None:
    if not model:
        raise ValueError("model must not be empty")
    if isinstance(versions, str):
        raise TypeError("versions must be a sequence of version names, not one string")
    if versions is not None and not versions:
        raise ValueError("versions must name at least one version (None means all)")
    if start_ns >= end_ns:
        raise ValueError(f"empty time range: start_ns {start_ns} >= end_ns {end_ns}")
    if join_policy not in JOIN_POLICIES:
        raise ValueError(f"join_policy must be one of {JOIN_POLICIES}, not {join_policy!r}")
    if label_as_of_ns > now_ns:
        raise ValueError(
            "label_as_of_ns lies in the future: labels still to arrive would count, "
            "and the same cutoff would not give the same snapshot"
        )


def _is_url(location: str) -> bool:
    return "://" in location


def _parquet_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", statistics=True)
    return buffer.getvalue()


def _manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _write(destination: str, digest: str, frame: pl.DataFrame, manifest: dict[str, Any]) -> str:
    if _is_url(destination):
        return _write_url(destination, digest, frame, manifest)
    return _write_local(Path(destination), digest, frame, manifest)


def _write_local(root: Path, digest: str, frame: pl.DataFrame, manifest: dict[str, Any]) -> str:
    final = root / digest
    if final.exists():
        raise SnapshotExistsError(str(final))
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{digest[:16]}-", dir=root))
    try:
        _write_synced(staging / SNAPSHOT_DATA_FILE, _parquet_bytes(frame))
        _write_synced(staging / SNAPSHOT_MANIFEST_FILE, _manifest_bytes(manifest))
        try:
            # POSIX rename refuses a non-empty target, so a concurrent export of the
            # same content cannot replace a finished snapshot.
            staging.rename(final)
        except OSError as error:
            if final.exists():
                raise SnapshotExistsError(str(final)) from error
            raise
        _fsync_dir(root)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return str(final)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _write_url(destination: str, digest: str, frame: pl.DataFrame, manifest: dict[str, Any]) -> str:
    filesystem, root = pafs.FileSystem.from_uri(destination)
    folder = f"{root.rstrip('/')}/{digest}"
    uri = f"{destination.rstrip('/')}/{digest}"
    if filesystem.get_file_info(folder).type != pafs.FileType.NotFound:
        raise SnapshotExistsError(uri)
    filesystem.create_dir(folder, recursive=True)
    # Object stores have no rename; the order of these two writes is what marks completion.
    for name, data in (
        (SNAPSHOT_DATA_FILE, _parquet_bytes(frame)),
        (SNAPSHOT_MANIFEST_FILE, _manifest_bytes(manifest)),
    ):
        with filesystem.open_output_stream(f"{folder}/{name}") as stream:
            stream.write(data)
    return uri


def _read_bytes(location: str, name: str) -> bytes | None:
    """The bytes of `name` inside the snapshot folder, None when it does not exist."""
    if not _is_url(location):
        path = Path(location) / name
        return path.read_bytes() if path.is_file() else None
    filesystem, folder = pafs.FileSystem.from_uri(location)
    path = f"{folder.rstrip('/')}/{name}"
    if filesystem.get_file_info(path).type != pafs.FileType.File:
        return None
    with filesystem.open_input_stream(path) as stream:
        return stream.read()
