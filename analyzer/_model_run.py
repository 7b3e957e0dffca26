"""One analysis run of one model: read its windows, run the pure checks, write findings.

Reference profiles are cached between runs (a pinned dataset or a version's first
events do not change), so each run only pays for the current window.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy.engine import Engine

from inferloop.store.queries import minute_series

from ._changepoint import detect_change_points
from ._config import AnalyzerConfig
from ._data_quality import data_quality
from ._drift import alarming_columns, compute_drift
from ._embeddings import embedding_drift, embedding_groups
from ._findings_store import FindingChange, apply_observations
from ._observations import (
    Observation,
    Window,
    change_point_observations,
    data_quality_observations,
    drift_observations,
    embedding_observation,
    performance_observations,
    quality_observations,
)
from ._payloads import PREDICTION_ID, features_frame
from ._performance import PerfWindow, compare_performance
from ._profile import ReferenceProfile, infer_kinds
from ._quality import compare_quality
from ._references import active_reference, read_table
from ._reports import store_drift_report
from ._samples import ColumnKind
from ._store_reads import calls_frame, first_events, labelled_outputs, window_events

logger = logging.getLogger(__name__)

NS = 1_000_000_000
REFERENCE_CACHE_SIZE = 64
SUMMARY_STATS = (".mean", ".std", ".min", ".max", ".nan")
PREDICTION_KEYS = ("prediction", "label", "class", "predicted", "score", "y")


@dataclass
class LoadedReference:
    description: dict[str, Any]
    frame: pl.DataFrame
    kinds: dict[str, ColumnKind]
    """Kinds of the plain features (embedding components excluded)."""
    profile: ReferenceProfile
    embeddings: dict[str, ReferenceProfile]


def reference_kinds(frame: pl.DataFrame) -> dict[str, ColumnKind]:
    """Inferred kinds, with tensor-summary statistics always numerical."""
    kinds = infer_kinds(frame.drop(PREDICTION_ID, strict=False))
    for name in kinds:
        if name.endswith(SUMMARY_STATS) and frame.schema[name].is_numeric():
            kinds[name] = ColumnKind.NUMERICAL
    return kinds


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


def error_rate_residuals(points: list[Any], warmup: int) -> np.ndarray | None:
    """Per-minute errors as binomial z-scores against the warm-up's error rate; None when
    the warm-up expects under one error a minute (the normal approximation would turn
    every stray error into an alarm)."""
    counts = np.array([p.count for p in points], dtype=float)
    errors = np.array([p.errors for p in points], dtype=float)
    rate = errors[:warmup].sum() / counts[:warmup].sum()
    if rate <= 0 or rate >= 1 or np.mean(counts[:warmup]) * rate < 1:
        return None
    expected = counts * rate
    return (errors - expected) / np.sqrt(expected * (1 - rate))


class ModelAnalysis:
    """Runs every check of one model; keeps reference profiles between runs."""

    def __init__(self, engine: Engine, config: AnalyzerConfig, reports_dir: str | Path) -> None:
        self.engine = engine
        self.config = config
        self.reports_dir = Path(reports_dir)
        self._references: OrderedDict[tuple, LoadedReference] = OrderedDict()

    def _remember(self, key: tuple, loaded: LoadedReference) -> LoadedReference:
        """Keep the most recently used reference profiles (a few per active version)."""
        self._references[key] = loaded
        self._references.move_to_end(key)
        while len(self._references) > REFERENCE_CACHE_SIZE:
            self._references.popitem(last=False)
        return loaded

    def run(self, model: str, versions: list[str], now_ns: int) -> list[FindingChange]:
        window_ns = int(self.config.window_s * NS)
        start_ns = now_ns - window_ns
        observations: list[Observation] = []
        evaluated: set[tuple[str | None, str]] = set()
        current_frames: dict[str, tuple[pl.DataFrame, LoadedReference]] = {}
        with self.engine.connect() as connection:
            for version in versions:
                window = Window(model, version, start_ns, now_ns)
                events = window_events(
                    connection, model, version, start_ns, now_ns, self.config.max_events
                )
                previous = window_events(
                    connection,
                    model,
                    version,
                    start_ns - window_ns,
                    start_ns,
                    self.config.max_events,
                )
                found, scopes, frames = self._drift(connection, window, events, previous)
                observations += found
                evaluated |= {(version, s) for s in scopes}
                if frames is not None:
                    current_frames[version] = frames
                found, scopes = self._performance(connection, window, events, previous, window_ns)
                observations += found
                evaluated |= {(version, s) for s in scopes}
        with self.engine.begin() as connection:
            changes = apply_observations(
                connection,
                model,
                observations,
                evaluated=evaluated,
                now_ns=now_ns,
                confirm_runs=self.config.confirm_runs,
                confirm_after_ns=self.config.confirm_after_ns,
            )
        if self.config.render_reports:
            self._render_reports(changes, current_frames)
        return changes

    # --- drift and data quality ---------------------------------------------------------

    def _drift(self, connection, window: Window, events, previous):
        reference = self._reference(connection, window, previous)
        current = features_frame(events)
        if reference is None or len(current) < self.config.min_rows:
            return [], [], None
        report = compute_drift(reference.profile, current, self.config.drift)
        alarms = alarming_columns(report, self.config.drift)
        window = Window(
            window.model, window.version, window.start_ns, window.end_ns, reference.description
        )
        embedding_found = []
        for name, profile in reference.embeddings.items():
            columns = list(profile.samples)
            if set(columns) <= set(current.columns):
                result = embedding_drift(profile, current.select(columns))
                embedding_found += embedding_observation(window, name, result)
        ids = (
            current[PREDICTION_ID].unique(maintain_order=True).head(5).to_list()
            if PREDICTION_ID in current.columns
            else []
        )
        found = drift_observations(window, report, alarms, ids) + embedding_found
        found += data_quality_observations(
            window, data_quality(reference.profile, current, self.config.data_quality)
        )
        return found, ["drift", "data_quality"], (current, reference)

    def _reference(self, connection, window: Window, previous) -> LoadedReference | None:
        pinned = active_reference(connection, window.model, window.version)
        if pinned is not None:
            key = ("pinned", pinned.id)
            if key in self._references:
                return self._remember(key, self._references[key])
            frame = read_table(pinned.path)
            kinds = {c: ColumnKind(k) for c, k in pinned.column_kinds.items()}
            description = {"type": "pinned", "reference_id": pinned.id, "name": pinned.name}
            loaded = self._load(description, frame, kinds)
            return None if loaded is None else self._remember(key, loaded)
        if self.config.baseline == "first_events":
            key = ("first", window.model, window.version, self.config.baseline_events)
            if key in self._references:
                return self._remember(key, self._references[key])
            events = first_events(
                connection, window.model, window.version, self.config.baseline_events
            )
            complete = len(events) == self.config.baseline_events
            if complete and events[-1]["start_time_ns"] < window.start_ns:
                description = {
                    "type": "first_events",
                    "events": len(events),
                    "until_ns": events[-1]["start_time_ns"],
                }
                loaded = self._load(description, features_frame(events))
                return None if loaded is None else self._remember(key, loaded)
        frame = features_frame(previous)  # previous period: recomputed each run
        if len(frame) < self.config.min_rows:
            return None
        description = {
            "type": "previous_period",
            "start_ns": 2 * window.start_ns - window.end_ns,
            "end_ns": window.start_ns,
        }
        return self._load(description, frame)

    def _load(self, description, frame: pl.DataFrame, kinds=None) -> LoadedReference | None:
        if frame.is_empty():
            return None
        kinds = dict(kinds or reference_kinds(frame))
        embeddings = {}
        for name, columns in embedding_groups(kinds).items():
            component_kinds = {c: ColumnKind.NUMERICAL for c in columns}
            embeddings[name] = ReferenceProfile.from_frame(frame, component_kinds)
            for column in columns:
                del kinds[column]
        profile = ReferenceProfile.from_frame(frame, kinds)
        return LoadedReference(description, frame, kinds, profile, embeddings)

    def _render_reports(self, changes: list[FindingChange], frames) -> None:
        for change in changes:
            obs = change.observation
            if (
                obs is None
                or not obs.wants_report
                or change.after != "open"
                or change.before == "open"
            ):
                continue
            if obs.version not in frames:
                continue
            current, reference = frames[obs.version]
            try:
                store_drift_report(
                    self.engine,
                    change.finding_id,
                    self.reports_dir,
                    reference.frame,
                    current,
                    reference.kinds,
                )
            except Exception:  # a report is a convenience: never lose the finding over it
                logger.exception(
                    "could not render the drift report of finding %s", change.finding_id
                )

    # --- performance, change points, quality -------------------------------------------

    def _performance(self, connection, window: Window, events, previous, window_ns: int):
        found: list[Observation] = []
        scopes: list[str] = []
        window_s = window_ns / NS
        baseline_window = Window(
            window.model,
            window.version,
            window.start_ns,
            window.end_ns,
            {
                "type": "previous_period",
                "start_ns": window.start_ns - window_ns,
                "end_ns": window.start_ns,
            },
        )
        if previous:  # an empty current window still counts: throughput fell to zero
            checks = compare_performance(
                PerfWindow.from_events(
                    calls_frame(previous), duration_s=window_s, start_ns=window.start_ns - window_ns
                ),
                PerfWindow.from_events(
                    calls_frame(events), duration_s=window_s, start_ns=window.start_ns
                ),
                self.config.performance,
            )
            if checks:
                scopes.append("performance")
                found += performance_observations(baseline_window, checks)
        found_cp, cp_scope = self._change_points(connection, window)
        found += found_cp
        scopes += cp_scope
        limit = self.config.max_events
        current_pairs = prediction_pairs(
            labelled_outputs(
                connection, window.model, window.version, window.start_ns, window.end_ns, limit
            ),
            self.config.prediction_key,
        )
        base_pairs = prediction_pairs(
            labelled_outputs(
                connection,
                window.model,
                window.version,
                window.start_ns - window_ns,
                window.start_ns,
                limit,
            ),
            self.config.prediction_key,
        )
        if current_pairs and base_pairs and current_pairs[0] == base_pairs[0]:
            checks = compare_quality(
                current_pairs[0], base_pairs[1:], current_pairs[1:], self.config.quality
            )
            if checks:
                scopes.append("quality")
                found += quality_observations(baseline_window, checks, len(current_pairs[1]))
        return found, scopes

    def _change_points(self, connection, window: Window):
        end_s = math.ceil(window.end_ns / NS / 60) * 60
        start_s = end_s - self.config.change_point_minutes * 60
        points = [
            p
            for p in minute_series(
                connection, window.model, start_s=start_s, end_s=end_s, version=window.version
            )
            if p.count
        ]
        if len(points) <= self.config.change_point_warmup:
            return [], []
        minutes = [p.minute_start_s for p in points]
        warmup = self.config.change_point_warmup
        method = self.config.change_point_method
        latency = np.log([max(p.p95_ns or 1.0, 1.0) for p in points])
        found = change_point_observations(
            window, "latency_p95_ms", detect_change_points(latency, method, warmup=warmup), minutes
        )
        errors = error_rate_residuals(points, warmup)
        if errors is not None:
            detected = detect_change_points(errors, method, warmup=warmup, standardised=True)
            found += change_point_observations(window, "error_rate", detected, minutes)
        return found, ["change_points"]
