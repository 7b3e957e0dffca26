"""A store for the dashboard's tests, written through the real paths: events through the
collector's `IngestPipeline` (so rollups are what ingest makes), versions and moves through
the registry, findings and notifications through the store, one feedback chain
(`tests.feedback.chain`) for the rollout checks and requests.

Times are relative to `now_s`, so every range of the pages (1 h to 7 d) has data.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from drift_cell_rows import drift_cell
from ingest_events import EventFactory

from inferloop.alerts import add_silence
from inferloop.collector import IngestPipeline
from inferloop.collector.pipeline import InputMessage
from inferloop.feedback import VersionState, move_version, register_version
from inferloop.grains import MINUTE_NS
from inferloop.store import insert_finding
from inferloop.store.drift_cells import write_cells
from inferloop.store.findings import set_report_path
from inferloop.store.outbox import (
    AttemptRecord,
    DeliveryState,
    claim_due,
    enqueue_notifications,
    record_attempt,
)

# The feedback tests' chain (a finding → retrain → canary → rollback): its folder is on the
# path when the whole suite runs; put it there (last) when only these tests do.
sys.path.append(str(Path(__file__).parents[1] / "feedback"))
import chain  # noqa: E402

SECOND_NS = 1_000_000_000
HOUR_NS = 3600 * SECOND_NS
DAY_NS = 24 * HOUR_NS
MODELS = ("fraud", "search")
"""Models with traffic; `chain.MODEL` ("ranker") has the feedback chain."""


@dataclass(frozen=True)
class Seeded:
    events: int
    drift_finding_id: int
    latency_finding_id: int
    silence_id: str
    notification_id: str
    drift_cells: int = 0
    """Cells of fraud v1's drift table: age, country and the dataset every 5 min for 6 h."""
    labels: int = 0
    """Labels of fraud's labeled predictions (`_labeled`), one waiting for its prediction."""


def _ingest(pipeline: IngestPipeline, factory: EventFactory, events: list[dict]) -> int:
    stored = 0
    for i in range(0, len(events), 1000):
        result = pipeline.ingest(
            [InputMessage(factory.batch_bytes(events[i : i + 1000]))], source="http"
        )
        assert not result.rejections, result.rejections
        stored += result.stored
    return stored


def _traffic(factory: EventFactory, minutes: list[int], per_minute: int, slow: float) -> list:
    """`per_minute` calls in each minute start (ns); one in 40 is an error."""
    events = []
    for minute_ns in minutes:
        for k in range(per_minute):
            event = factory.inference(
                start_time_ns=minute_ns + k * (MINUTE_NS // per_minute),
                latency_ns=int((8_000_000 + (k * 7919 % 40) * 250_000) * slow),
            )
            if (event["seq"] % 40) == 39:
                event.update(status="error", error_type="TimeoutError", error_message="timed out")
            events.append(event)
    return events


def seed(
    engine: sa.Engine,
    *,
    now_s: float,
    report_dir: Path,
    week_every_min: int = 10,
    week_per_minute: int = 4,
) -> Seeded:
    """Seed the store; the week before the last 6 h has `week_per_minute` calls in every
    `week_every_min`-th minute (the defaults keep the tests quick; render_times.py asks
    for every minute)."""
    now_ns = int(now_s * SECOND_NS)
    this_minute = now_ns // MINUTE_NS * MINUTE_NS
    pipeline = IngestPipeline(engine)
    stored = 0
    v2_from = this_minute - 2 * HOUR_NS
    for model_index, model in enumerate(MODELS):
        # A week of sparse traffic (every 10th minute), and the last 6 h every minute.
        week = [
            this_minute - 7 * DAY_NS + m * MINUTE_NS for m in range(0, 7 * 24 * 60, week_every_min)
        ]
        recent = [this_minute - 6 * HOUR_NS + m * MINUTE_NS for m in range(6 * 60)]
        week = [m for m in week if m < recent[0]]
        slow = 1.0 + model_index
        v1 = EventFactory(model=model, version="1")
        v1_recent = [m for m in recent if m < v2_from or model_index == 1]
        events = _traffic(v1, week, week_per_minute, slow) + _traffic(v1, v1_recent, 20, slow)
        stored += _ingest(pipeline, v1, events)
        if model_index == 0:
            v2 = EventFactory(model=model, version="2")
            v2_recent = [m for m in recent if m >= v2_from]
            stored += _ingest(pipeline, v2, _traffic(v2, v2_recent, 20, 1.4))

    with engine.begin() as connection:
        for artifact in ("s3://fraud/1", "s3://fraud/2"):
            register_version(
                connection, "fraud", artifact_uri=artifact, who="ci", now_ns=now_ns - 4 * DAY_NS
            )
    moves = [
        (1, VersionState.CANARY, now_ns - 3 * DAY_NS, "first release"),
        (1, VersionState.LIVE, now_ns - 3 * DAY_NS + HOUR_NS, "canary passed"),
        (2, VersionState.CANARY, v2_from, "retrained on drifted data"),
        (2, VersionState.LIVE, v2_from + HOUR_NS, "canary passed"),
    ]
    for version, to, at_ns, why in moves:
        with engine.begin() as connection:
            move_version(
                connection,
                "fraud",
                version,
                to,
                environment="production",
                who="ops",
                why=why,
                now_ns=at_ns,
            )

    drift_id = _finding(
        engine,
        now_ns,
        kind="dataset_drift",
        subject="*",
        severity="critical",
        title="fraud 1: dataset drift, 50% of columns drifted",
        evidence={
            "drifted_share": 0.5,
            "drifted_columns": ["age"],
            "features": [
                _feature("age", "numerical", "ks", 0.0004, "p_value", 0.05),
                _feature("country", "categorical", "chisquare", 0.41, "p_value", 0.05),
            ],
        },
    )
    report = report_dir / f"finding-{drift_id}.html"
    report.write_text("<!doctype html><title>report</title><h1>Data drift report</h1>")
    with engine.begin() as connection:
        set_report_path(connection, drift_id, str(report))
    latency_id = _finding(
        engine,
        now_ns,
        kind="latency_regression",
        subject="latency_p95",
        severity="warning",
        title="fraud 2: p95 latency up 40% on v1",
        evidence={"metric": "latency_p95", "current": 14.0, "baseline_value": 10.0},
    )

    notification_id = f"n-{drift_id}"
    with engine.begin() as connection:
        enqueue_notifications(
            connection,
            [
                {
                    "id": notification_id,
                    "receiver": "oncall-webhook",
                    "group_key": '{}:{model="fraud"}',
                    "status": "firing",
                    "body": {"title": "fraud dataset drift"},
                    "created_at_ns": now_ns - 10 * MINUTE_NS,
                }
            ],
        )
        (row,) = claim_due(connection, "seed", now_ns=now_ns, lease_ns=60 * SECOND_NS)
        record = AttemptRecord("delivered", 200, "", 12.5, DeliveryState.DELIVERED, None)
        record_attempt(connection, row, "seed", record, now_ns=now_ns - 9 * MINUTE_NS)
        silence = add_silence(
            connection,
            ['model="search"'],
            now_ns=now_ns,
            duration="2h",
            comment="search reindex",
            created_by="tests",
        )
    cells = _drift_cells(engine, this_minute, drift_id)
    labeled_events, labels = _labeled(pipeline, now_ns, v2_from)
    chain.whole_chain(engine)
    return Seeded(
        stored + labeled_events, drift_id, latency_id, silence.id, notification_id, cells, labels
    )


LABEL_DELAYS_S = (0.4, 4, 40, 5 * 60, 30 * 60, 3 * 3600)
"""The label delays of fraud's recent labeled predictions, in turn (one per bucket of the
label-delay panel up to hours); older ones wait 8 h or 1.5 days."""


def _labeled(pipeline: IngestPipeline, now_ns: int, v2_from: int) -> tuple[int, int]:
    """Fraud predictions with a `prediction` output, labeled later: every 5 minutes of the
    last 6 h six of them (v1 right 9 times in 10, v2 7 in 10), and 24 three days ago; one
    label waits for a prediction never stored. Five events of v1's labeled emitter are lost
    on the way and its SDK reports 9 drops (7 queue_full, 2 send_failed)."""
    factories = {v: EventFactory(model="fraud", version=v) for v in ("1", "2")}
    labeler = EventFactory(model="fraud", version="1")
    predictions: dict[str, list[dict]] = {"1": [], "2": []}
    labels: list[dict] = []
    # The old ones first: the lost run sits among the recent ones, and is charged there.
    starts = [now_ns - 3 * DAY_NS + k * MINUTE_NS for k in range(4)]
    starts += [now_ns - 6 * HOUR_NS + k * 5 * MINUTE_NS for k in range(72)]
    n = 0
    for start in starts:
        version = "2" if start >= v2_from else "1"
        for k in range(6):
            n += 1
            at = start + k * SECOND_NS
            truth = n % 2
            right = n % 10 < (7 if version == "2" else 9)
            event = factories[version].inference(
                start_time_ns=at,
                latency_ns=int(8_000_000 * (1.4 if version == "2" else 1.0)),
                prediction_id=f"lq-{n}",
                outputs={"rows": [{"prediction": truth if right else 1 - truth}]},
            )
            predictions[version].append(event)
            old = start < now_ns - DAY_NS
            delay = (8 * 3600 if k % 2 else 36 * 3600) if old else LABEL_DELAYS_S[n % 6]
            label_ns = at + int(delay * SECOND_NS)
            if label_ns < now_ns:
                labels.append(labeler.label(f"lq-{n}", truth, time_ns=label_ns))
    labels.append(labeler.label("lq-never-stored", 1, time_ns=now_ns - 10 * MINUTE_NS))
    stored = 0
    first = predictions["1"]
    first[len(first) // 2]["dropped"] = {"queue_full": 7, "send_failed": 2}
    stored += _ingest(pipeline, factories["1"], first[: len(first) // 2])
    rest = [dict(e, seq=e["seq"] + 5) for e in first[len(first) // 2 :]]
    stored += _ingest(pipeline, factories["1"], rest)
    stored += _ingest(pipeline, factories["2"], predictions["2"])
    _ingest(pipeline, labeler, labels)
    return stored, len(labels)


def _drift_cells(engine, this_minute_ns: int, finding_id: int) -> int:
    """A drift run every 5 minutes over the last 6 h: `age` over its threshold in the last
    hour, and the dataset's share alarming (the seeded dataset-drift finding) in the last
    half hour; `country` stays calm."""
    cells = []
    for k in range(72):
        end_ns = this_minute_ns - k * 5 * MINUTE_NS
        recent, latest = k < 12, k < 6
        for feature, kind, test, score_kind, score, threshold, drifted, alarmed in (
            ("age", "data_drift", "ks", "p_value", 1e-4 if recent else 0.3, 0.05, recent, False),
            ("country", "data_drift", "chisquare", "p_value", 0.6, 0.05, False, False),
            (
                "*",
                "dataset_drift",
                "drift_share",
                "share",
                0.5 if recent else 0.0,
                0.5,
                recent,
                latest,
            ),
        ):
            cells.append(
                drift_cell(
                    end_ns,
                    feature,
                    version="1",
                    kind=kind,
                    column_kind=None if feature == "*" else "num",
                    test=test,
                    statistic=score,
                    score=score,
                    score_kind=score_kind,
                    threshold=threshold,
                    drifted=drifted,
                    alarmed=alarmed,
                    finding_id=finding_id if alarmed else None,
                )
            )
    with engine.begin() as connection:
        return write_cells(connection, cells)


def _feature(name, kind, test, score, score_kind, threshold) -> dict:
    return {
        "feature": name,
        "kind": kind,
        "test": test,
        "statistic": score,
        "score": score,
        "score_kind": score_kind,
        "threshold": threshold,
        "reference_rows": 1000,
        "current_rows": 900,
    }


def _finding(engine, now_ns: int, **values) -> int:
    with engine.begin() as connection:
        return insert_finding(
            connection,
            {
                "fingerprint": values["kind"] + values["subject"],
                "model": "fraud",
                "version": "1",
                "status": "open",
                "window_start_ns": now_ns - HOUR_NS,
                "window_end_ns": now_ns,
                "first_seen_ns": now_ns - HOUR_NS,
                "last_seen_ns": now_ns,
                "opened_at_ns": now_ns - HOUR_NS,
                "occurrences": 2,
                **values,
            },
        )
