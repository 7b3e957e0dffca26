"""Event payloads become feature frames: rows, tensor summaries, embeddings, outputs."""

from __future__ import annotations

import numpy as np
from analyzer_streams import HOUR_NS, NS, Stream, ingest

from inferloop.analyzer import AnalyzerConfig, AnalyzerWorker, features_frame, list_findings
from inferloop.analyzer._embeddings import embedding_groups
from inferloop.settings import Settings


def test_rows_summaries_vectors_and_outputs_become_columns():
    frame = features_frame(
        [
            {
                "prediction_id": "a",
                "inputs": {"rows": [{"age": 3, "emb": [0.5, 1.5]}]},
                "outputs": {"rows": [{"score": 0.1}]},
            },
            {
                "prediction_id": "b",
                "inputs": {
                    "summary": {
                        "shape": [4, 2],
                        "dtype": "float32",
                        "features": {"f0": {"mean": 0.2, "std": 1.0}},
                    }
                },
            },
            {
                "prediction_id": "c",
                "inputs": None,
                "outputs": {"rows": [{"score": 0.3}, {"score": 0.4}]},
            },
        ]
    )
    assert set(frame.columns) == {
        "age",
        "emb[0]",
        "emb[1]",
        "output.score",
        "f0.mean",
        "f0.std",
        "__prediction_id",
    }
    assert frame["output.score"].drop_nulls().to_list() == [0.1, 0.3, 0.4]
    assert frame["__prediction_id"].to_list() == ["a", "b", "c", "c"]
    assert embedding_groups(frame.columns) == {"emb": ["emb[0]", "emb[1]"]}


def test_nested_objects_and_flags_do_not_become_vectors():
    frame = features_frame(
        [
            {
                "prediction_id": "a",
                "inputs": {"rows": [{"x": {"y": 1}, "flags": [True, False], "ok": True}]},
            }
        ]
    )
    assert (
        frame["x"].to_list() == [None]
        and frame["flags"].to_list() == [None]
        and frame["ok"].to_list() == [True]
    )


def test_embedding_drift_is_a_finding_and_its_components_are_not_reported_one_by_one(
    migrated_engine, tmp_path
):
    engine = migrated_engine
    t0 = 1_800_000_000 * NS
    stream = Stream("embedder", seed=3)
    for hour, shift in enumerate([0.0, 0.0, 0.5]):
        inference, _ = stream.hour(
            t0 - (3 - hour) * HOUR_NS,
            events=600,
            embedding_dims=8,
            embedding_shift=shift,
            label_share=0,
        )
        ingest(engine, inference)
    worker = AnalyzerWorker(
        Settings(data_dir=tmp_path),
        engine,
        config=AnalyzerConfig(
            window_s=3600,
            baseline_events=500,
            confirm_runs=1,
            confirm_after_s=0,
            render_reports=False,
        ),
        clock=lambda: t0,
    )
    worker.run_once()
    with engine.connect() as connection:
        findings = list_findings(connection, model="embedder")
    assert [(f.kind, f.subject) for f in findings] == [("embedding_drift", "emb")]
    assert findings[0].evidence["share"] == 1.0
    assert np.isclose(len(findings[0].evidence["components"]), 8)


def test_drifted_output_columns_are_prediction_drift_findings():
    from inferloop.analyzer import ReferenceProfile, alarming_columns, compute_drift
    from inferloop.analyzer._observations import Window, drift_observations

    rng = np.random.default_rng(5)

    def events(n, score_mean):
        return [
            {
                "prediction_id": f"p{i}",
                "inputs": {"rows": [{"age": float(rng.normal(40, 10))}]},
                "outputs": {"rows": [{"score": float(rng.normal(score_mean, 0.1))}]},
            }
            for i in range(n)
        ]

    reference = features_frame(events(2000, 0.3))
    current = features_frame(events(800, 0.45))
    report = compute_drift(ReferenceProfile.from_frame(reference.drop("__prediction_id")), current)
    found = drift_observations(Window("m", "v1", 0, 1), report, alarming_columns(report), ["p1"])
    # one of two columns drifted: 50% reaches the default drift share, so dataset drift too
    assert [(o.kind, o.subject) for o in found] == [
        ("prediction_drift", "output.score"),
        ("dataset_drift", "*"),
    ]
    assert found[0].evidence["sample_prediction_ids"] == ["p1"] and found[0].wants_report
