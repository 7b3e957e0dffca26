"""Label-based quality per window: classifier and regressor metrics, and the drop test.

A drop needs both a significant one-sided test (noise does not alert) and a minimum
decline (a significant but tiny change does not alert either).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats

from ._performance import PerfCheck, hypergeom_upper

Task = Literal["classification", "regression"]


def classification_metrics(
    y_true: Any, y_pred: Any, y_score: Any | None = None, *, positive: Any = None
) -> dict[str, float]:
    """Accuracy, precision, recall, F1 (binary: of `positive`; else macro) and ROC AUC
    (binary with scores for the positive class)."""
    truth, predicted = np.asarray(y_true), np.asarray(y_pred)
    labels = np.unique(np.concatenate((truth, predicted)))
    metrics = {"accuracy": float(np.mean(truth == predicted)) if truth.size else float("nan")}
    binary = labels.size <= 2
    if binary:
        positive = _positive_label(labels) if positive is None else positive
        classes = [positive]
    else:
        classes = list(labels)
    precisions, recalls, f1s = [], [], []
    for label in classes:
        tp = np.count_nonzero((predicted == label) & (truth == label))
        fp = np.count_nonzero((predicted == label) & (truth != label))
        fn = np.count_nonzero((predicted != label) & (truth == label))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        precisions.append(precision)
        recalls.append(recall)
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    metrics |= {
        "precision": float(np.mean(precisions)),
        "recall": float(np.mean(recalls)),
        "f1": float(np.mean(f1s)),
    }
    if y_score is not None and binary:
        metrics["roc_auc"] = roc_auc(truth == positive, np.asarray(y_score, dtype=float))
    return metrics


def roc_auc(is_positive: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney probability that a positive outscores a negative."""
    n_pos = int(np.count_nonzero(is_positive))
    n_neg = is_positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = stats.rankdata(scores)
    return float((ranks[is_positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    errors = np.asarray(y_pred, dtype=float) - np.asarray(y_true, dtype=float)
    return {"mae": float(np.mean(np.abs(errors))), "rmse": float(np.sqrt(np.mean(errors**2)))}


def _positive_label(labels: np.ndarray) -> Any:
    for candidate in (1, True, "1", "true", "yes", "positive"):
        if candidate in labels.tolist():
            return candidate
    return labels.max()


@dataclass(frozen=True, kw_only=True)
class QualityOptions:
    alpha: float = 0.01
    min_accuracy_drop: float = 0.03
    min_error_increase: float = 0.1
    """Regression: relative MAE increase that matters."""
    min_labels: int = 50


def compare_quality(
    task: Task,
    baseline: tuple[Any, Any],
    current: tuple[Any, Any],
    options: QualityOptions | None = None,
) -> list[PerfCheck]:
    """Quality of `current` (y_true, y_pred) against `baseline`; `regressed` marks a drop.

    Classification: the accuracy drop is tested (one-sided, exact hypergeometric on the
    counts of wrong predictions); regression: absolute errors, one-sided Mann-Whitney.
    The other metrics ride along in `detail` as evidence.
    """
    options = options or QualityOptions()
    base_true, base_pred = (np.asarray(x) for x in baseline)
    cur_true, cur_pred = (np.asarray(x) for x in current)
    if min(base_true.size, cur_true.size) < options.min_labels:
        return []
    if task == "classification":
        before = classification_metrics(base_true, base_pred)
        after = classification_metrics(cur_true, cur_pred)
        wrong_base = int(np.count_nonzero(base_true != base_pred))
        wrong_cur = int(np.count_nonzero(cur_true != cur_pred))
        p_value = hypergeom_upper(wrong_cur, wrong_base + wrong_cur, base_true.size, cur_true.size)
        drop = before["accuracy"] - after["accuracy"]
        regressed = p_value < options.alpha and drop >= options.min_accuracy_drop
        detail = {f"baseline_{k}": v for k, v in before.items()} | {
            f"current_{k}": v for k, v in after.items()
        }
        return [
            PerfCheck(
                "accuracy", before["accuracy"], after["accuracy"], -drop, p_value, regressed, detail
            )
        ]
    if task == "regression":
        before, after = (
            regression_metrics(base_true, base_pred),
            regression_metrics(cur_true, cur_pred),
        )
        base_abs = np.abs(base_pred.astype(float) - base_true.astype(float))
        cur_abs = np.abs(cur_pred.astype(float) - cur_true.astype(float))
        p_value = float(stats.mannwhitneyu(cur_abs, base_abs, alternative="greater").pvalue)
        change = after["mae"] / before["mae"] - 1 if before["mae"] > 0 else float("inf")
        regressed = p_value < options.alpha and change >= options.min_error_increase
        detail = {"baseline_rmse": before["rmse"], "current_rmse": after["rmse"]}
        return [PerfCheck("mae", before["mae"], after["mae"], change, p_value, regressed, detail)]
    raise ValueError("task must be 'classification' or 'regression'")
