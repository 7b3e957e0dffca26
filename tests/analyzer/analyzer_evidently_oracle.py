"""Run Evidently's own DataDriftPreset report and read its per-column scores and verdicts."""

from __future__ import annotations

import re

import pandas as pd


def evidently_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numerical: list[str],
    categorical: list[str],
    **preset_options,
) -> tuple[dict[str, tuple[str, float, bool]], bool]:
    """column -> (method display name, score, drifted), and Evidently's dataset verdict."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    snapshot = Report([DataDriftPreset(**preset_options)], include_tests=True).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    payload = snapshot.dict()
    scores = {}
    for metric in payload["metrics"]:
        config = metric["config"]
        if config["type"].endswith("ValueDrift"):
            scores[config["column"]] = (config["method"], float(metric["value"]))
    verdicts = {}
    dataset_drift = None
    for test in payload["tests"]:
        found = re.fullmatch(r"Value Drift for column (.+)", test["name"])
        if found:
            verdicts[found.group(1)] = test["status"] == "FAIL"
        elif test["name"].startswith("Share of Drifted Columns"):
            dataset_drift = test["status"] == "FAIL"
    columns = {c: (scores[c][0], scores[c][1], verdicts[c]) for c in scores}
    return columns, bool(dataset_drift)
