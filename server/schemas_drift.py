"""Response bodies of the drift table's route: one cell per test of a window."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from inferloop.store.vocabulary import FindingKind, FindingStatus


class DriftCellResponse(BaseModel):
    """One drift test of one window, drifted or not, and where its evidence is."""

    model: str
    version: str = Field(description="The event version the window was read for.")
    kind: FindingKind = Field(
        description="The finding kind this test raises: data_drift (a feature), "
        "prediction_drift (an output), dataset_drift (the share of drifted columns, "
        "feature `*`) or embedding_drift."
    )
    feature: str
    window_start_ns: int
    window_end_ns: int
    column_kind: str | None = Field(description="num or cat; null for dataset and embeddings.")
    test: str = Field(description="The statistical test, e.g. ks, chi2_contingency, psi.")
    statistic: float | None
    score: float | None = Field(description="The p-value or distance the verdict is made on.")
    score_kind: str = Field(description="p_value, distance or share.")
    threshold: float | None
    effect_name: str | None
    effect: float | None = Field(description="Effect size (calibrated mode), whatever n is.")
    drifted: bool = Field(description="The test's verdict at its threshold.")
    alarmed: bool = Field(
        description="Whether the analyzer raised or kept a finding for it (calibrated mode "
        "also asks for Holm-corrected significance and a material effect)."
    )
    reference_rows: int | None
    current_rows: int | None
    baseline: dict[str, Any] = Field(description="What the window was compared with.")
    analyzed_at_ns: int
    finding_id: int | None = Field(description="The finding this cell raised or updated.")
    finding_status: FindingStatus | None
    report_url: str | None = Field(
        description="The window's Evidently HTML report (its finding's); null when there is none."
    )
    report: str = Field(description="Why there is a report or not, in words.")
