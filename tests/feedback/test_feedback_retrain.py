"""Retrain requests on both back ends, on virtual time: a policy trigger exports a snapshot
and queues one CloudEvent that carries it; duplicate triggers, a second worker and a crash
midway add nothing; the cooldown and the new-label minimum hold, and say why."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sinks import serving_sink

from inferloop.feedback import (
    RETRAIN_REQUESTED,
    RequestDispatcher,
    RetrainPolicy,
    RetrainWorker,
    WebhookDestination,
    decision_id,
    read_snapshot,
    request_retrain,
)
from inferloop.store import Event, Label, insert_finding
from inferloop.store.feedback_queries import feedback_requests
from inferloop.store.lineage import lineage_of

MODEL = "ranker"
SECOND = 1_000_000_000
HOUR = 3600 * SECOND
T0 = 1_700_000_000 * SECOND
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
POLICY = RetrainPolicy(min_new_labels=100, cooldown_s=6 * 3600, snapshot_window_s=7 * 86400)


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def add_predictions(engine, count: int, *, at: int, prefix: str = "p") -> list[str]:
    """`count` predictions started a second apart from `at`, received at once."""
    ids = [f"{prefix}-{at}-{i}" for i in range(count)]
    rows = [
        {
            "event_id": uuid.uuid4().hex,
            "emitter_id": "test",
            "seq": i,
            "model": MODEL,
            "version": "1",
            "environment": "production",
            "start_time_ns": at + i * SECOND,
            "latency_ns": 10_000_000,
            "device_time_ns": None,
            "status": "ok",
            "error_type": None,
            "error_message": None,
            "batch_size": 1,
            "device": "cpu",
            "inputs": {"age": i % 90},
            "outputs": {"rows": [{"value": i % 2}]},
            "prediction_id": pid,
            "tags": {},
            "received_at_ns": at + i * SECOND,
        }
        for i, pid in enumerate(ids)
    ]
    with engine.begin() as connection:
        connection.execute(sa.insert(Event.__table__), rows)
    return ids


def add_labels(engine, prediction_ids: list[str], *, received_at: int) -> None:
    rows = [
        {
            "event_id": uuid.uuid4().hex,
            "emitter_id": "labels",
            "seq": i,
            "prediction_id": pid,
            "model": MODEL,
            "label": i % 2,
            "time_ns": received_at,
            "received_at_ns": received_at,
        }
        for i, pid in enumerate(prediction_ids)
    ]
    with engine.begin() as connection:
        connection.execute(sa.insert(Label.__table__), rows)


def add_finding(
    engine, *, at: int, kind: str = "dataset_drift", severity: str = "critical", subject="*"
) -> int:
    with engine.begin() as connection:
        return insert_finding(
            connection,
            {
                "fingerprint": uuid.uuid4().hex,
                "model": MODEL,
                "version": "1",
                "kind": kind,
                "subject": subject,
                "severity": severity,
                "status": "open",
                "title": f"{kind} on {subject}",
                "evidence": {"share_drifted": 0.6},
                "window_start_ns": at - HOUR,
                "window_end_ns": at,
                "first_seen_ns": at,
                "last_seen_ns": at,
                "opened_at_ns": at,
                "occurrences": 2,
            },
        )


def worker(engine, clock: Clock, snapshots: Path, policy: RetrainPolicy = POLICY):
    return RetrainWorker(
        engine, policy=policy, snapshot_dir=snapshots, destinations=["hook", "kafka"], clock=clock
    )


def retrain_rows(engine) -> list[dict]:
    with engine.connect() as connection:
        return feedback_requests(connection, model=MODEL, type=RETRAIN_REQUESTED)


def event_of(row: dict) -> dict:
    return json.loads(row["event"]) if isinstance(row["event"], str) else row["event"]


@pytest.fixture
def snapshots(tmp_path) -> Path:
    return tmp_path / "snapshots"


@pytest.fixture
def labeled(migrated_engine):
    """300 predictions an hour before T0, 200 of them labeled half an hour later."""
    ids = add_predictions(migrated_engine, 300, at=T0 - HOUR)
    add_labels(migrated_engine, ids[:200], received_at=T0 - HOUR // 2)
    return migrated_engine


def test_a_critical_finding_with_enough_labels_queues_one_request_carrying_its_snapshot(
    labeled, snapshots
):
    finding = add_finding(labeled, at=T0 - 60 * SECOND)
    clock = Clock(T0)
    steps = worker(labeled, clock, snapshots).run_once()
    assert [(s.action, s.finding_ids, s.new_labeled_rows) for s in steps] == [
        ("requested", (finding,), 200)
    ]
    expected_id = decision_id(RETRAIN_REQUESTED, {"model": MODEL, "finding_id": finding})
    rows = retrain_rows(labeled)
    assert [(r["id"], r["destination"], r["state"]) for r in rows] == [
        (expected_id, "hook", "pending"),
        (expected_id, "kafka", "pending"),
    ]
    event = event_of(rows[0])
    assert event["id"] == steps[0].request_id and event["subject"] == MODEL
    data = event["data"]
    assert data["trigger"] == "policy" and data["finding_ids"] == [finding]
    assert data["evidence"]["findings"][0]["kind"] == "dataset_drift"
    assert data["evidence"]["policy"]["min_new_labels"] == 100
    snapshot = read_snapshot(data["snapshot"]["uri"])  # verifies the rows against the hash
    assert snapshot.content_hash == data["snapshot"]["content_hash"]
    assert data["snapshot"]["rows"] == snapshot.frame.height == 200
    assert data["snapshot"]["labeled_count"] == 200
    assert data["snapshot"]["prediction_count"] == 300
    assert data["snapshot"]["label_as_of_ns"] == T0

    with labeled.connect() as connection:  # the lineage links the finding to it
        chain = lineage_of(connection, finding_id=finding)
    assert [r["id"] for r in chain.retrain_requests] == [expected_id]
    assert chain.retrain_requests[0]["snapshot"]["content_hash"] == snapshot.content_hash

    with serving_sink() as sink:
        hook = WebhookDestination(url=sink.url, secrets=[SECRET], clock=lambda: 1.7e9)
        dispatcher = RequestDispatcher(labeled, {"hook": hook}, clock=clock)
        dispatcher.run_once()
    [received] = sink.received
    assert received.headers["webhook-id"] == expected_id
    assert json.loads(received.body)["data"]["snapshot"]["uri"] == data["snapshot"]["uri"]


def test_duplicate_triggers_and_two_workers_make_one_request_and_one_snapshot(labeled, snapshots):
    finding = add_finding(labeled, at=T0 - 60 * SECOND)
    clock = Clock(T0)
    results: list = []
    workers = [worker(labeled, clock, snapshots) for _ in range(2)]
    threads = [threading.Thread(target=lambda w=w: results.append(w.run_once())) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    actions = sorted(s.action for steps in results for s in steps)
    # One worker makes the request. The other either finds it made, or finds it still
    # `preparing` and completes it itself ("resumed": by design, a reservation is finished
    # by whoever sees it, with the same planned snapshot).
    assert actions.count("requested") + actions.count("resumed") == 1, actions
    clock.now += 7 * HOUR  # past the cooldown: the finding is covered, not re-requested
    [again] = worker(labeled, clock, snapshots).run_once()
    assert again.action == "covered" and str(finding) in again.reason
    manual = request_retrain(  # by hand for the same finding: the same decision
        labeled,
        MODEL,
        snapshot_dir=snapshots,
        destinations=["hook"],
        now_ns=clock.now,
        reason="on-call asked",
        finding_id=finding,
    )
    assert not manual.queued
    rows = retrain_rows(labeled)
    assert {r["id"] for r in rows} == {manual.id}
    assert len(rows) == 2  # one per destination
    assert [p.name for p in snapshots.iterdir()] == [manual.snapshot["content_hash"]]


def test_the_cooldown_holds_back_a_new_finding_until_it_is_over(labeled, snapshots):
    add_finding(labeled, at=T0 - 60 * SECOND)
    clock = Clock(T0)
    assert worker(labeled, clock, snapshots).run_once()[0].action == "requested"
    ids = add_predictions(labeled, 150, at=T0 + HOUR, prefix="q")
    add_labels(labeled, ids, received_at=T0 + 2 * HOUR)
    second = add_finding(labeled, at=T0 + 2 * HOUR, kind="quality_drop", subject="accuracy")
    clock.now = T0 + 3 * HOUR
    [waiting] = worker(labeled, clock, snapshots).run_once()
    assert waiting.action == "cooldown" and waiting.finding_ids == (second,)
    assert "10800 s ago" in waiting.reason and "21600 s" in waiting.reason
    assert len({r["id"] for r in retrain_rows(labeled)}) == 1
    clock.now = T0 + 6 * HOUR
    [done] = worker(labeled, clock, snapshots).run_once()
    assert done.action == "requested" and done.new_labeled_rows == 150
    assert len({r["id"] for r in retrain_rows(labeled)}) == 2


def test_too_few_new_labels_queue_nothing_and_say_so(labeled, snapshots):
    add_finding(labeled, at=T0 - 60 * SECOND)
    clock = Clock(T0)
    strict = RetrainPolicy(min_new_labels=500, cooldown_s=0, snapshot_window_s=7 * 86400)
    [step] = worker(labeled, clock, snapshots, strict).run_once()
    assert step.action == "too_few_labels" and step.new_labeled_rows == 200
    assert step.reason == (
        "200 new labeled rows since the last retrain request; the policy needs 500"
    )
    assert retrain_rows(labeled) == [] and not snapshots.exists()


def test_new_labels_are_counted_from_the_last_requests_cutoff(labeled, snapshots):
    add_finding(labeled, at=T0 - 60 * SECOND)
    clock = Clock(T0)
    assert worker(labeled, clock, snapshots).run_once()[0].action == "requested"
    old = [f"p-{T0 - HOUR}-{i}" for i in range(200, 260)]  # 60 of the unlabeled ones
    add_labels(labeled, old, received_at=T0 + HOUR)
    add_finding(labeled, at=T0 + HOUR)
    clock.now = T0 + 7 * HOUR
    [step] = worker(labeled, clock, snapshots).run_once()
    assert (step.action, step.new_labeled_rows) == ("too_few_labels", 60)


def test_a_warning_finding_or_another_kind_asks_for_nothing(labeled, snapshots):
    add_finding(labeled, at=T0 - 60, kind="data_drift", severity="warning", subject="age")
    add_finding(labeled, at=T0 - 60, kind="latency_regression", severity="critical")
    assert worker(labeled, Clock(T0), snapshots).run_once() == []
    assert retrain_rows(labeled) == []


def test_a_crash_before_release_is_completed_later_with_the_same_cutoff(labeled, snapshots):
    finding = add_finding(labeled, at=T0 - 60 * SECOND)
    blocked = snapshots
    blocked.write_text("not a folder")  # the export fails after the reservation
    clock = Clock(T0)
    [failed] = worker(labeled, clock, blocked).run_once()
    assert failed.action == "failed" and "snapshots" in failed.reason
    failed, then = worker(labeled, clock, blocked).run_once()  # the reservation is retried
    assert (failed.model, failed.action, then.action) == (MODEL, "failed", "covered")
    rows = retrain_rows(labeled)
    assert {r["state"] for r in rows} == {"preparing"}  # decided, not sendable
    blocked.unlink()
    late = add_predictions(labeled, 50, at=T0 + HOUR, prefix="late")
    add_labels(labeled, late, received_at=T0 + HOUR)  # after the cutoff: not in it
    clock.now = T0 + 2 * HOUR
    step, then = worker(labeled, clock, blocked).run_once()
    assert step.action == "resumed" and step.finding_ids == (finding,)
    assert then.action == "covered"
    rows = retrain_rows(labeled)
    assert {r["state"] for r in rows} == {"pending"} and len(rows) == 2
    data = event_of(rows[0])["data"]
    assert data["snapshot"]["label_as_of_ns"] == T0 and data["snapshot"]["rows"] == 200
    assert read_snapshot(data["snapshot"]["uri"]).content_hash == data["snapshot"]["content_hash"]
    assert len(list(blocked.iterdir())) == 1


def test_a_manual_request_is_one_per_cutoff_or_key(labeled, snapshots):
    def manual(now_ns: int, **options):
        return request_retrain(
            labeled,
            MODEL,
            snapshot_dir=snapshots,
            destinations=["hook"],
            now_ns=now_ns,
            reason="new features",
            evidence={"ticket": "ML-42"},
            **options,
        )

    first = manual(T0)
    assert first.queued and first.event["data"]["trigger"] == "manual"
    assert first.event["data"]["evidence"] == {"ticket": "ML-42"}
    assert not manual(T0).queued and manual(T0).id == first.id
    keyed = manual(T0 + HOUR, idempotency_key="ML-42")
    retried = manual(T0 + 2 * HOUR, idempotency_key="ML-42")
    assert keyed.queued and not retried.queued and retried.id == keyed.id != first.id
    assert retried.event["data"]["label_as_of_ns"] == T0 + HOUR
    # no label arrived in between: the same rows, so the same snapshot folder, reused
    assert keyed.snapshot["content_hash"] == first.snapshot["content_hash"]
    assert keyed.snapshot["label_as_of_ns"] == T0
    assert len({r["id"] for r in retrain_rows(labeled)}) == 2


def test_a_manual_request_joins_the_callers_transaction(labeled, snapshots):
    with labeled.begin() as connection:
        made = request_retrain(
            connection,
            MODEL,
            snapshot_dir=snapshots,
            destinations=["hook"],
            now_ns=T0,
            reason="by hand",
        )
        assert made.queued
    assert [r["state"] for r in retrain_rows(labeled)] == ["pending"]
    with pytest.raises(RuntimeError), labeled.begin() as connection:
        request_retrain(
            connection,
            MODEL,
            snapshot_dir=snapshots,
            destinations=["hook"],
            now_ns=T0 + 1,
            reason="rolled back",
        )
        raise RuntimeError("the caller's transaction fails")
    assert len(retrain_rows(labeled)) == 1


def test_the_policy_matches_kinds_by_pattern_and_severity_by_rank():
    policy = RetrainPolicy(kinds=("*drift",), min_severity="warning")
    finding = {"id": 1, "status": "open", "kind": "data_drift", "severity": "warning"}
    assert policy.matches(finding)
    assert not policy.matches({**finding, "severity": "info"})
    assert not policy.matches({**finding, "kind": "quality_drop"})
    assert not policy.matches({**finding, "status": "pending"})
    with pytest.raises(ValueError):
        RetrainPolicy(kinds="*drift")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        RetrainPolicy(min_severity="fatal")  # type: ignore[arg-type]


def test_the_policy_counts_labels_only_when_every_cheaper_check_passed():
    finding = {"id": 7, "status": "open", "kind": "dataset_drift", "severity": "critical"}

    def never() -> int:
        raise AssertionError("labels counted although the cooldown holds")

    verdict = POLICY.evaluate(
        [finding], covered=set(), last_request_ns=T0, now_ns=T0 + HOUR, new_labeled_rows=never
    )
    assert verdict.action == "cooldown" and verdict.cooldown_left_s == 5 * 3600


def test_two_callers_racing_on_one_key_queue_one_request(labeled, snapshots):
    made: list = []

    def call(now_ns: int) -> None:
        made.append(
            request_retrain(
                labeled,
                MODEL,
                snapshot_dir=snapshots,
                destinations=["hook"],
                now_ns=now_ns,
                reason="release train",
                idempotency_key="train-7",
            )
        )

    threads = [threading.Thread(target=call, args=(T0 + k,)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(m.queued for m in made) == [False, True]
    assert made[0].id == made[1].id and made[0].snapshot == made[1].snapshot
    assert len(retrain_rows(labeled)) == 1 and len(list(snapshots.iterdir())) == 1
