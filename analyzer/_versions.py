"""Candidate vs live on the store: the comparison a guarded rollout asks for."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from inferloop.store.events_read import labelled_outputs, window_events

from ._check_labels import prediction_pairs
from ._payloads import calls_frame
from ._performance import PerfOptions, PerfWindow, VersionComparison, compare_versions
from ._quality import QualityOptions, compare_quality


def compare_stored_versions(
    engine: Engine,
    model: str,
    *,
    live: str,
    candidate: str,
    start_ns: int,
    end_ns: int,
    performance: PerfOptions | None = None,
    quality: QualityOptions | None = None,
    prediction_key: str | None = None,
    max_events: int = 200_000,
) -> VersionComparison:
    """Latency, device time, error rate and (with labels) quality of `candidate` against
    `live` over the same period; `verdict == "worse"` is the rollback signal."""
    duration_s = (end_ns - start_ns) / 1e9
    with engine.connect() as connection:
        live_events = window_events(connection, model, live, start_ns, end_ns, max_events)
        candidate_events = window_events(connection, model, candidate, start_ns, end_ns, max_events)
        live_pairs = prediction_pairs(
            labelled_outputs(connection, model, live, start_ns, end_ns, max_events), prediction_key
        )
        candidate_pairs = prediction_pairs(
            labelled_outputs(connection, model, candidate, start_ns, end_ns, max_events),
            prediction_key,
        )
    extra = []
    if live_pairs and candidate_pairs and live_pairs[0] == candidate_pairs[0]:
        extra = compare_quality(live_pairs[0], live_pairs[1:], candidate_pairs[1:], quality)
    return compare_versions(
        PerfWindow.from_events(calls_frame(live_events), duration_s=duration_s),
        PerfWindow.from_events(calls_frame(candidate_events), duration_s=duration_s),
        performance,
        extra_checks=extra,
    )
