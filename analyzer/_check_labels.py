"""The label-quality check: accuracy (or MAE) of predictions that have a label, in the
window against the previous period. Skipped unless both periods have labelled
predictions of the same task."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from inferloop.store.events_read import labelled_outputs
from inferloop.store.vocabulary import CheckScope

from ._checks import CheckContext, CheckResult
from ._observations import quality_observations
from ._quality import compare_quality

PREDICTION_KEYS = ("prediction", "label", "class", "predicted", "score", "y")


def prediction_pairs(
    rows: list[tuple[Any, Any]], key: str | None
) -> tuple[str, np.ndarray, np.ndarray] | None:
    """(task, y_true, y_pred) from joined (outputs, label) pairs; None when unusable."""
    truths, predictions = [], []
    for outputs, label in rows:
        out_rows = outputs.get("rows") if isinstance(outputs, Mapping) else None
        if not out_rows or not isinstance(out_rows[0], Mapping) or label is None:
            continue
        row = out_rows[0]
        name = key or next((k for k in PREDICTION_KEYS if k in row), next(iter(row), None))
        if name is None or row.get(name) is None:
            continue
        truths.append(label)
        predictions.append(row[name])
    if not truths:
        return None
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in truths)
    if numeric and any(not float(v).is_integer() for v in truths):
        return "regression", np.asarray(truths, dtype=float), np.asarray(predictions, dtype=float)
    predicted = np.asarray(predictions, dtype=object)
    if numeric and all(isinstance(p, float) and 0 <= p <= 1 for p in predictions):
        predicted = (np.asarray(predictions, dtype=float) >= 0.5).astype(
            int
        )  # a score: threshold it
    return "classification", np.asarray(truths, dtype=object), predicted.astype(object)


class LabelQualityCheck:
    """Classification or regression metrics of labelled predictions, window vs before."""

    scope = CheckScope.QUALITY

    def run(self, context: CheckContext) -> CheckResult:
        window, config = context.window, context.config

        def pairs(start_ns: int, end_ns: int):
            rows = labelled_outputs(
                context.connection,
                window.model,
                window.version,
                start_ns,
                end_ns,
                config.max_events,
            )
            return prediction_pairs(rows, config.prediction_key)

        current = pairs(window.start_ns, window.end_ns)
        base = pairs(window.start_ns - context.window_ns, window.start_ns)
        if not (current and base and current[0] == base[0]):
            return CheckResult()
        checks = compare_quality(current[0], base[1:], current[1:], config.quality)
        if not checks:
            return CheckResult()
        found = quality_observations(context.against_previous_period(), checks, len(current[1]))
        return CheckResult(found, evaluated=True)
