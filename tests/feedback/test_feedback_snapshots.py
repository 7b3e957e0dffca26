"""Labeled dataset snapshots on both back ends: the as-of rule, stable hashes, immutability.

Batches go through the real ingest pipeline, which stamps them with the wall clock;
each step returns the cutoff just after it, so "arrived after the cutoff" is exact.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import polars as pl
import pytest
from ingest_events import MINUTE_NS, EventFactory

from inferloop.collector import IngestPipeline, InputMessage
from inferloop.feedback import (
    SNAPSHOT_DATA_FILE,
    SNAPSHOT_MANIFEST_FILE,
    SnapshotExistsError,
    SnapshotIntegrityError,
    export_snapshot,
    read_snapshot,
)

NOW = 4_000_000_000 * 10**9
"""The injected clock's time (2096): after every cutoff a test takes."""


def clock() -> int:
    return NOW


def ingest(engine, factory: EventFactory, events: list[dict]) -> int:
    """Store `events` the real way; return a cutoff after their receive time, before the next."""
    result = IngestPipeline(engine).ingest(
        [InputMessage(factory.batch_bytes(events))], source="test"
    )
    assert result.stored == len(events)
    cutoff = time.time_ns()
    while time.time_ns() <= cutoff:  # the next batch is stamped strictly later
        pass
    return cutoff


@pytest.fixture
def factory() -> EventFactory:
    return EventFactory(model="fraud", version="v1")


def window(factory: EventFactory) -> dict:
    return {
        "model": "fraud",
        "start_ns": factory.base_time_ns,
        "end_ns": factory.base_time_ns + MINUTE_NS,
    }


def export(engine, factory, destination, as_of: int, **options) -> str:
    snapshot = export_snapshot(
        engine,
        **window(factory),
        label_as_of_ns=as_of,
        destination=destination,
        clock=clock,
        **options,
    )
    return snapshot.uri


def labels_of(uri: str) -> dict[str, object]:
    frame = read_snapshot(uri).frame
    assert frame is not None
    return dict(zip(frame["prediction_id"], frame["label"], strict=True))


def story(engine, factory: EventFactory) -> tuple[int, int, int, int]:
    """An early, a late, a corrected, a re-sent stale and a missing label.

    Returns the cutoffs after each step:
    1: the label of p-early arrives before its prediction.
    2: the predictions, and the first labels of p-corr and p-stale.
    3: the late label of p-late.
    4: the correction of p-corr, and a stale version of p-stale (older `time_ns`).
    """
    t = factory.base_time_ns
    early = ingest(engine, factory, [factory.label("p-early", "fraud", time_ns=t)])
    predictions = [
        factory.inference(prediction_id=pid) for pid in ("p-early", "p-late", "p-corr", "p-none")
    ]
    predictions.append(factory.inference(prediction_id="p-stale"))
    predicted = ingest(
        engine,
        factory,
        [
            *predictions,
            factory.label("p-corr", "fraud", time_ns=t + 10),
            factory.label("p-stale", "ok", time_ns=t + 50),
        ],
    )
    late = ingest(engine, factory, [factory.label("p-late", "ok", time_ns=t + 20)])
    corrected = ingest(
        engine,
        factory,
        [
            factory.label("p-corr", "ok", time_ns=t + 30),
            factory.label("p-stale", "fraud", time_ns=t + 40),
        ],
    )
    return early, predicted, late, corrected


def test_the_label_in_force_is_the_latest_one_received_by_the_cutoff(
    migrated_engine, factory, tmp_path
):
    _, predicted, late, corrected = story(migrated_engine, factory)

    before_late = labels_of(export(migrated_engine, factory, tmp_path / "a", predicted))
    before_correction = labels_of(export(migrated_engine, factory, tmp_path / "b", late))
    after_correction = labels_of(export(migrated_engine, factory, tmp_path / "c", corrected))

    assert before_late == {"p-corr": "fraud", "p-early": "fraud", "p-stale": "ok"}
    assert before_correction == {**before_late, "p-late": "ok"}
    # The correction wins; the stale version arrived last but is older by its own time.
    assert after_correction == {**before_correction, "p-corr": "ok"}


def test_the_earliest_policy_keeps_the_first_label_version(migrated_engine, factory, tmp_path):
    *_, cutoff = story(migrated_engine, factory)

    labels = labels_of(export(migrated_engine, factory, tmp_path, cutoff, join_policy="earliest"))

    assert labels["p-corr"] == "fraud"
    assert labels["p-stale"] == "fraud"


def test_a_prediction_received_after_the_cutoff_is_not_in_the_snapshot(
    migrated_engine, factory, tmp_path
):
    early, *_ = story(migrated_engine, factory)

    labels = labels_of(export(migrated_engine, factory, tmp_path, early))

    assert labels == {}  # p-early's label was there, its prediction not yet


def test_re_exporting_with_the_same_cutoff_gives_the_same_hash(migrated_engine, factory, tmp_path):
    *_, cutoff = story(migrated_engine, factory)

    first = read_snapshot(export(migrated_engine, factory, tmp_path / "a", cutoff))
    again = read_snapshot(export(migrated_engine, factory, tmp_path / "b", cutoff))

    assert first.content_hash == again.content_hash
    assert Path(first.uri).name == first.content_hash
    assert first.frame is not None and again.frame is not None
    assert first.frame.equals(again.frame)


def test_a_label_received_after_the_cutoff_leaves_the_snapshot_unchanged(
    migrated_engine, factory, tmp_path
):
    _, _, late, _ = story(migrated_engine, factory)
    before = read_snapshot(export(migrated_engine, factory, tmp_path / "a", late))

    later = [factory.label("p-none", "fraud"), factory.label("p-late", "fraud")]
    ingest(migrated_engine, factory, later)
    after = read_snapshot(export(migrated_engine, factory, tmp_path / "b", late))

    assert after.content_hash == before.content_hash
    assert after.manifest["labeled_count"] == before.manifest["labeled_count"] == 4


def test_a_later_cutoff_after_a_correction_changes_the_hash(migrated_engine, factory, tmp_path):
    _, _, late, corrected = story(migrated_engine, factory)

    before = read_snapshot(export(migrated_engine, factory, tmp_path, late))
    after = read_snapshot(export(migrated_engine, factory, tmp_path, corrected))

    assert after.content_hash != before.content_hash
    assert after.manifest["corrected_count"] == 2  # p-corr and p-stale have two versions


def test_a_tampered_parquet_file_is_detected_on_read(migrated_engine, factory, tmp_path):
    *_, cutoff = story(migrated_engine, factory)
    uri = export(migrated_engine, factory, tmp_path, cutoff)
    data = Path(uri) / SNAPSHOT_DATA_FILE
    frame = pl.read_parquet(data)
    flipped = pl.when(pl.col("label") == "ok").then(pl.lit("fraud")).otherwise(pl.lit("ok"))
    frame.with_columns(label=flipped).write_parquet(data)

    with pytest.raises(SnapshotIntegrityError, match="changed after export"):
        read_snapshot(uri)

    data.write_bytes(data.read_bytes()[:-20])
    with pytest.raises(SnapshotIntegrityError, match="unreadable data file"):
        read_snapshot(uri)


def test_a_folder_without_a_manifest_is_an_incomplete_snapshot(migrated_engine, factory, tmp_path):
    *_, cutoff = story(migrated_engine, factory)
    uri = export(migrated_engine, factory, tmp_path, cutoff)
    (Path(uri) / SNAPSHOT_MANIFEST_FILE).unlink()

    with pytest.raises(SnapshotIntegrityError, match="incomplete"):
        read_snapshot(uri)


def test_the_hash_does_not_depend_on_parquet_writer_settings(migrated_engine, factory, tmp_path):
    *_, cutoff = story(migrated_engine, factory)
    uri = export(migrated_engine, factory, tmp_path, cutoff)
    data = Path(uri) / SNAPSHOT_DATA_FILE
    frame = pl.read_parquet(data)
    # Same rows, other order, no compression, one-row groups, no statistics.
    frame.reverse().write_parquet(
        data, compression="uncompressed", row_group_size=1, statistics=False
    )

    assert read_snapshot(uri).content_hash == Path(uri).name


def test_the_manifest_records_what_was_exported_and_how(migrated_engine, factory, tmp_path):
    *_, cutoff = story(migrated_engine, factory)
    other = EventFactory(model="fraud", version="v2")
    other.base_time_ns = factory.base_time_ns
    ingest(migrated_engine, other, [other.inference(prediction_id="p-v2")])

    snapshot = export_snapshot(
        migrated_engine,
        **window(factory),
        versions=["v1"],
        label_as_of_ns=cutoff,
        destination=tmp_path,
        include_unlabeled=True,
        clock=clock,
    )

    manifest = json.loads((Path(snapshot.uri) / SNAPSHOT_MANIFEST_FILE).read_text())
    assert manifest == snapshot.manifest
    assert manifest["content_hash"] == Path(snapshot.uri).name
    assert manifest["model"] == "fraud"
    assert manifest["versions"] == ["v1"]
    assert manifest["time_range"]["start_ns"] == factory.base_time_ns
    assert (manifest["label_as_of_ns"], manifest["join_policy"]) == (cutoff, "latest")
    assert (manifest["prediction_count"], manifest["labeled_count"]) == (5, 4)
    assert (manifest["row_count"], manifest["label_version_count"]) == (5, 6)
    assert manifest["label_distribution"] == {
        "kind": "classes",
        "count": 4,
        "counts": {"fraud": 1, "ok": 3},
    }
    columns = [column["name"] for column in manifest["schema"]]
    assert columns[:4] == ["prediction_id", "event_id", "model", "version"]
    assert {"inputs", "outputs", "label", "label_time_ns"} <= set(columns)
    assert manifest["created_at_ns"] == NOW
    frame = read_snapshot(snapshot.uri).frame
    assert frame is not None
    row = frame.filter(pl.col("prediction_id") == "p-corr").row(0, named=True)
    assert json.loads(row["inputs"])["rows"][0]["country"] == "fr"
    assert (row["version"], row["label"], row["label_versions"]) == ("v1", "ok", 2)


def test_numeric_labels_are_summarised_by_quantiles(migrated_engine, factory, tmp_path):
    predictions = [factory.inference() for _ in range(5)]
    labels = [factory.label(p["prediction_id"], 0.5 * i) for i, p in enumerate(predictions)]
    cutoff = ingest(migrated_engine, factory, [*predictions, *labels])

    snapshot = read_snapshot(export(migrated_engine, factory, tmp_path, cutoff))

    distribution = snapshot.manifest["label_distribution"]
    assert distribution["kind"] == "quantiles"
    assert (distribution["min"], distribution["p50"], distribution["max"]) == (0.0, 1.0, 2.0)
    assert snapshot.frame is not None and snapshot.frame["label"].dtype == pl.Float64


def test_an_existing_snapshot_folder_is_never_written_into(migrated_engine, factory, tmp_path):
    *_, cutoff = story(migrated_engine, factory)
    destination = tmp_path / "snapshots"
    uri = export(migrated_engine, factory, destination, cutoff)
    files = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in Path(uri).iterdir()}

    with pytest.raises(SnapshotExistsError) as refused:
        export(migrated_engine, factory, destination, cutoff)

    assert refused.value.uri == uri
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in Path(uri).iterdir()} == files
    assert [p.name for p in destination.iterdir()] == [Path(uri).name]  # no staging left


def test_a_file_url_gives_the_same_snapshot_and_refuses_to_overwrite_it(
    migrated_engine, factory, tmp_path
):
    *_, cutoff = story(migrated_engine, factory)
    local = read_snapshot(export(migrated_engine, factory, tmp_path / "local", cutoff))

    uri = export(migrated_engine, factory, f"file://{tmp_path / 'url'}", cutoff)

    assert uri == f"file://{tmp_path / 'url' / local.content_hash}"
    assert read_snapshot(uri).content_hash == local.content_hash
    with pytest.raises(SnapshotExistsError):
        export(migrated_engine, factory, f"file://{tmp_path / 'url'}", cutoff)


def test_a_cutoff_in_the_future_is_refused(migrated_engine, factory, tmp_path):
    with pytest.raises(ValueError, match="future"):
        export(migrated_engine, factory, tmp_path, NOW + 1)
