"""Lineage on both back ends, from rows written by the real feedback functions: a finding
forwards to its rolled-back candidate, the candidate back to its finding, and a finding that
caused nothing has an empty chain."""

from __future__ import annotations

import pytest
from chain import MODEL, PROD, SNAPSHOT_HASH, add_finding, retrain_request, whole_chain

from inferloop import feedback
from inferloop.feedback import register_version
from inferloop.store import lineage
from inferloop.store.lineage import UnknownLineageSubject, lineage_of


def _lineage(engine, **subject):
    with engine.connect() as connection:
        return lineage_of(connection, **subject)


def test_the_store_names_the_same_event_types_as_the_feedback_package():
    assert lineage.RETRAIN_REQUESTED == feedback.RETRAIN_REQUESTED
    assert lineage.REDEPLOY_REQUESTED == feedback.REDEPLOY_REQUESTED
    assert lineage.ROLLBACK_REQUESTED == feedback.ROLLBACK_REQUESTED


def test_a_finding_leads_to_its_retrain_snapshot_version_rollout_and_rollback(migrated_engine):
    chain = whole_chain(migrated_engine)
    found = _lineage(migrated_engine, finding_id=chain.finding_id)

    assert found.subject == {"finding_id": chain.finding_id}
    assert [f["id"] for f in found.findings] == [chain.finding_id]
    assert found.findings[0]["kind"] == "data_drift"

    (retrain,) = found.retrain_requests
    assert retrain["id"] == chain.retrain_id and retrain["finding_ids"] == [chain.finding_id]
    assert retrain["snapshot"]["content_hash"] == SNAPSHOT_HASH
    assert retrain["snapshot"]["rows"] == 500
    assert sorted(d["destination"] for d in retrain["deliveries"]) == ["hook", "kafka"]
    assert retrain["data"]["trigger"] == "policy"

    (version,) = found.versions
    assert version["version"] == chain.candidate
    assert version["retrain_request_ids"] == [chain.retrain_id]
    assert version["snapshot"]["content_hash"] == SNAPSHOT_HASH
    assert [r["id"] for r in version["redeploy_requests"]] == [chain.redeploy_id]
    assert version["redeploy_requests"][0]["data"]["previous_version"] == 1
    assert [r["id"] for r in version["rollback_requests"]] == [chain.rollback_id]
    checks = version["rollout_checks"]
    assert [c["check_number"] for c in checks] == list(range(1, chain.checks + 1))
    assert checks[-1]["outcome"] == "fail" and checks[-1]["evidence"]["decision"]
    assert all(c["environment"] == PROD for c in checks)
    moves = [(m["from_state"], m["to_state"]) for m in version["moves"]]
    assert moves == [(None, "candidate"), ("candidate", "canary"), ("canary", "rolled_back")]
    assert version["moves"][-1]["evidence"]["check_number"] == chain.checks
    times = [m["at_ns"] for m in version["moves"]]
    assert times == sorted(times)


def test_a_version_leads_back_to_its_finding_and_forward_to_its_rollout(migrated_engine):
    chain = whole_chain(migrated_engine)
    found = _lineage(migrated_engine, model=MODEL, version=chain.candidate)
    assert found.subject == {"model": MODEL, "version": chain.candidate}
    assert [f["id"] for f in found.findings] == [chain.finding_id]
    assert [r["id"] for r in found.retrain_requests] == [chain.retrain_id]
    assert [v["version"] for v in found.versions] == [chain.candidate]
    assert found.versions[0]["rollback_requests"]


def test_a_version_without_a_snapshot_has_only_its_own_history(migrated_engine):
    whole_chain(migrated_engine)
    found = _lineage(migrated_engine, model=MODEL, version=1)
    assert found.findings == [] and found.retrain_requests == []
    (version,) = found.versions
    assert version["retrain_request_ids"] == [] and version["rollout_checks"] == []
    assert [m["to_state"] for m in version["moves"]] == ["candidate", "canary", "live"]


def test_a_finding_that_caused_no_retrain_has_an_empty_chain(migrated_engine):
    whole_chain(migrated_engine)
    lonely = add_finding(migrated_engine)
    found = _lineage(migrated_engine, finding_id=lonely)
    assert [f["id"] for f in found.findings] == [lonely]
    assert found.retrain_requests == [] and found.versions == []


def test_a_retrain_whose_version_is_not_registered_yet_ends_at_its_snapshot(migrated_engine):
    finding_id = add_finding(migrated_engine)
    retrain_id = retrain_request(migrated_engine, [finding_id, 999], at=2_000_000_000)
    found = _lineage(migrated_engine, finding_id=finding_id)
    assert [r["id"] for r in found.retrain_requests] == [retrain_id]
    assert found.retrain_requests[0]["finding_ids"] == [finding_id, 999]
    assert found.versions == []


def test_a_version_registered_from_the_snapshot_by_uri_alone_is_linked(migrated_engine):
    finding_id = add_finding(migrated_engine)
    retrain_request(migrated_engine, [finding_id], at=2_000_000_000)
    with migrated_engine.begin() as connection:
        register_version(
            connection,
            MODEL,
            artifact_uri="s3://m/9",
            who="trainer",
            now_ns=2_000_000_001,
            source_snapshot_uri=f"/data/snapshots/{SNAPSHOT_HASH}",
        )
    found = _lineage(migrated_engine, finding_id=finding_id)
    assert [v["version"] for v in found.versions] == [1]


def test_unknown_finding_or_version_raises_and_a_bad_question_is_refused(migrated_engine):
    with pytest.raises(UnknownLineageSubject, match="no finding 42"):
        _lineage(migrated_engine, finding_id=42)
    with pytest.raises(UnknownLineageSubject, match="not registered"):
        _lineage(migrated_engine, model=MODEL, version=3)
    with pytest.raises(ValueError, match="give finding_id"):
        _lineage(migrated_engine, finding_id=1, model=MODEL, version=1)
    with pytest.raises(ValueError, match="give finding_id"):
        _lineage(migrated_engine, model=MODEL)
