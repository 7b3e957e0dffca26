"""Checks against the drift reference: feature, prediction, dataset and embedding drift;
data quality (missing values, new categories, out-of-range values).

Both need the reference and at least `min_rows` feature rows in the window; without
them they evaluate nothing, so their earlier findings stay as they are.
"""

from __future__ import annotations

from inferloop.store.vocabulary import CheckScope

from ._checks import CheckContext, CheckResult, ReportFrames
from ._data_quality import data_quality
from ._drift import alarming_columns, compute_drift
from ._drift_cells import drift_cells, embedding_cell
from ._embeddings import embedding_drift
from ._observations import data_quality_observations, drift_observations, embedding_observation
from ._payloads import PREDICTION_ID
from ._reference_cache import LoadedReference

SAMPLE_PREDICTION_IDS = 5


def _drift_inputs(context: CheckContext) -> LoadedReference | None:
    reference = context.reference
    if reference is None or len(context.features) < context.config.min_rows:
        return None
    return reference


class DriftCheck:
    """Per-column drift tests and the dataset-drift share; embeddings tested as wholes."""

    scope = CheckScope.DRIFT

    def run(self, context: CheckContext) -> CheckResult:
        reference = _drift_inputs(context)
        if reference is None:
            return CheckResult()
        current = context.features
        options = context.config.drift
        report = compute_drift(reference.profile, current, options)
        alarms = alarming_columns(report, options)
        window = context.against(reference.description)
        cells = drift_cells(window, report, alarms, options)
        embedding_found = []
        for name, profile in reference.embeddings.items():
            columns = list(profile.samples)
            if set(columns) <= set(current.columns):
                result = embedding_drift(profile, current.select(columns))
                embedding_found += embedding_observation(window, name, result)
                cells.append(embedding_cell(window, name, result))
        ids = (
            current[PREDICTION_ID].unique(maintain_order=True).head(SAMPLE_PREDICTION_IDS).to_list()
            if PREDICTION_ID in current.columns
            else []
        )
        return CheckResult(
            drift_observations(window, report, alarms, ids) + embedding_found,
            evaluated=True,
            report_frames=ReportFrames(current, reference),
            drift_cells=cells,
        )


class DataQualityCheck:
    """Shares of missing values, unseen categories and out-of-range values vs the reference."""

    scope = CheckScope.DATA_QUALITY

    def run(self, context: CheckContext) -> CheckResult:
        reference = _drift_inputs(context)
        if reference is None:
            return CheckResult()
        issues = data_quality(reference.profile, context.features, context.config.data_quality)
        window = context.against(reference.description)
        return CheckResult(data_quality_observations(window, issues), evaluated=True)
