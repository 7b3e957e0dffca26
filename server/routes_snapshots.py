"""Labeled dataset snapshots over HTTP: export on demand, list those in the snapshots folder,
verify one against its content hash.

The server reads and writes local snapshots only under its snapshots folder
(`feedback.snapshots_dir` when that setting exists, else `<data_dir>/snapshots`), so a
caller cannot make it read or write elsewhere on its disk; object-store URLs go wherever
their credentials allow.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from inferloop.feedback import (
    SNAPSHOT_MANIFEST_FILE,
    SnapshotExistsError,
    SnapshotIntegrityError,
    export_snapshot,
    read_snapshot,
)

from .deps import ApiKeyDep, EngineDep, SettingsDep
from .pagination import (
    DEFAULT_PAGE_LIMIT,
    CursorQuery,
    LimitQuery,
    Page,
    decode_cursor,
    page_of,
)
from .schemas_feedback import SnapshotExport, SnapshotResponse, SnapshotSummary, SnapshotVerified

router = APIRouter(prefix="/v1", tags=["snapshots"], dependencies=[ApiKeyDep])

UriQuery = Annotated[
    str, Query(min_length=1, description="The snapshot's folder (or URL), as the export gave it.")
]


def _local_path(uri: str) -> Path | None:
    if uri.startswith("file://"):
        return Path(uri.removeprefix("file://"))
    return None if "://" in uri else Path(uri)


def _check_allowed(uri: str, root: Path) -> None:
    path = _local_path(uri)
    if path is not None and not path.resolve().is_relative_to(root.resolve()):
        raise HTTPException(
            403, f"the server reads and writes local snapshots only under {root}; {uri} is not"
        )


def summary(uri: str, manifest: dict[str, Any]) -> SnapshotSummary:
    """The listing's view of a manifest (read, not verified)."""
    return SnapshotSummary(
        uri=uri,
        content_hash=str(manifest.get("content_hash", "")),
        model=manifest.get("model"),
        versions=manifest.get("versions"),
        row_count=manifest.get("row_count"),
        labeled_count=manifest.get("labeled_count"),
        label_as_of_ns=manifest.get("label_as_of_ns"),
        created_at_ns=manifest.get("created_at_ns"),
        time_range=manifest.get("time_range"),
    )


def local_snapshots(root: Path) -> list[tuple[str, dict[str, Any]]]:
    """(folder, manifest) of every complete snapshot directly under `root`, by folder name.

    Hidden folders are exports still being written; a folder without a readable manifest
    is not a snapshot (verify it to learn why).
    """
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(root.iterdir()):
        manifest_path = folder / SNAPSHOT_MANIFEST_FILE
        if folder.name.startswith(".") or not manifest_path.is_file():
            continue
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(manifest, dict):
            found.append((str(folder), manifest))
    return found


@router.post(
    "/models/{model}/snapshots",
    status_code=201,
    response_model=SnapshotResponse,
    responses={
        409: {"description": "This snapshot already exists (same rows, same hash)."},
        422: {"description": "An empty range, a cutoff in the future, an unknown join policy."},
    },
)
def post_snapshot(
    model: str, body: SnapshotExport, engine: EngineDep, settings: SettingsDep
) -> SnapshotResponse:
    """Export the joined rows of `model` as of a label cutoff: Parquet, then the manifest."""
    root = settings.snapshots_root()
    destination = body.destination or str(root)
    _check_allowed(destination, root)
    try:
        snapshot = export_snapshot(
            engine,
            model=model,
            versions=body.versions,
            start_ns=body.start_ns,
            end_ns=body.end_ns,
            label_as_of_ns=body.label_as_of_ns
            if body.label_as_of_ns is not None
            else time.time_ns(),
            destination=destination,
            join_policy=body.join_policy,  # type: ignore[arg-type]
            include_unlabeled=body.include_unlabeled,
        )
    except SnapshotExistsError as error:
        raise HTTPException(409, f"{error}: the same export was made before") from None
    except (ValueError, TypeError) as error:
        raise HTTPException(422, str(error)) from None
    return SnapshotResponse(
        uri=snapshot.uri, content_hash=snapshot.content_hash, manifest=snapshot.manifest
    )


@router.get("/snapshots", response_model=Page[SnapshotSummary])
def list_snapshots(
    settings: SettingsDep,
    model: str | None = None,
    uri: Annotated[str | None, Query(description="Only this snapshot (404 if absent).")] = None,
    limit: LimitQuery = DEFAULT_PAGE_LIMIT,
    cursor: CursorQuery = None,
) -> Page[SnapshotSummary]:
    """The snapshots in the server's snapshots folder, by content hash (manifests read, data
    not verified: see `/v1/snapshots/verify`)."""
    root = settings.snapshots_root()
    if uri is not None:
        _check_allowed(uri, root)
        path = _local_path(uri)
        manifest_path = None if path is None else path / SNAPSHOT_MANIFEST_FILE
        if manifest_path is None or not manifest_path.is_file():
            raise HTTPException(404, f"no snapshot manifest at {uri}")
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, ValueError) as error:
            raise HTTPException(409, f"{uri}: unreadable manifest ({error})") from None
        return Page(items=[summary(uri, manifest)], next_cursor=None)
    key = decode_cursor(cursor, fields=("folder",))
    rows = [
        (folder, manifest)
        for folder, manifest in local_snapshots(root)
        if (model is None or manifest.get("model") == model)
        and (key is None or Path(folder).name > key["folder"])
    ]
    kept, next_cursor = page_of(
        rows[: limit + 1], limit=limit, key_of=lambda r: {"folder": Path(r[0]).name}
    )
    return Page(items=[summary(f, m) for f, m in kept], next_cursor=next_cursor)


@router.get(
    "/snapshots/verify",
    response_model=SnapshotVerified,
    responses={
        404: {"description": "No snapshot there."},
        409: {"description": "Tampered, truncated or incomplete: the message says which."},
    },
)
def verify_snapshot(uri: UriQuery, settings: SettingsDep) -> SnapshotVerified:
    """Read a snapshot and check its rows against the manifest's content hash."""
    _check_allowed(uri, settings.snapshots_root())
    path = _local_path(uri)
    if path is not None and not path.is_dir():
        raise HTTPException(404, f"no snapshot at {uri}")
    try:
        snapshot = read_snapshot(uri)
    except SnapshotIntegrityError as error:
        raise HTTPException(409, f"snapshot failed verification: {error}") from None
    except OSError as error:
        raise HTTPException(404, f"cannot read {uri}: {error}") from None
    return SnapshotVerified(
        uri=snapshot.uri,
        verified=True,
        content_hash=snapshot.content_hash,
        row_count=0 if snapshot.frame is None else snapshot.frame.height,
        manifest=snapshot.manifest,
    )
