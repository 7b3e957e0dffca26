"""The queries components share, on both databases: leases, references, findings, dead
letters; and the vocabulary of the findings table, whose strings must never change."""

from __future__ import annotations

import sqlalchemy as sa

from inferloop.store import (
    SCOPE_OF_KIND,
    CheckScope,
    DeadLetter,
    FindingKind,
    FindingStatus,
    Severity,
    active_findings,
    active_reference,
    claim_model,
    finding_report_path,
    finish_model,
    insert_finding,
    list_findings,
    pin_reference,
    recent_dead_letters,
    set_report_path,
    update_finding,
)


def test_stored_strings_of_the_vocabulary_stay_the_same():
    assert [s.value for s in Severity] == ["info", "warning", "critical"]
    assert [s.value for s in FindingStatus] == ["pending", "open", "resolved", "dismissed"]
    assert set(SCOPE_OF_KIND) == set(FindingKind)
    assert {kind.value: kind.scope.value for kind in FindingKind} == {
        "data_drift": "drift",
        "prediction_drift": "drift",
        "dataset_drift": "drift",
        "embedding_drift": "drift",
        "data_quality": "data_quality",
        "latency_regression": "performance",
        "error_rate_regression": "performance",
        "throughput_change": "performance",
        "change_point": "change_points",
        "quality_drop": "quality",
        "rollout_failed": "rollout",
        "rollout_inconclusive": "rollout",
    }
    assert set(SCOPE_OF_KIND.values()) == set(CheckScope)


def test_a_lease_goes_to_one_worker_and_the_model_waits_an_interval(migrated_engine):
    lease = {"lease_ns": 100, "interval_ns": 50}
    with migrated_engine.begin() as connection:
        assert claim_model(connection, "m", "a", now_ns=1000, **lease)
        assert not claim_model(connection, "m", "b", now_ns=1001, **lease)
        finish_model(connection, "m", "a", now_ns=1010)
        assert not claim_model(connection, "m", "b", now_ns=1030, **lease)  # ran 20 ns ago
        assert claim_model(connection, "m", "b", now_ns=1060, **lease)
        assert not claim_model(connection, "m", "a", now_ns=1100, **lease)  # b holds it
        assert claim_model(connection, "m", "a", now_ns=1161, **lease)  # b's lease expired


def test_the_newest_reference_of_a_scope_applies_and_the_model_wide_one_backs_it(
    migrated_engine,
):
    def pin(version, name):
        return pin_reference(
            connection,
            model="m",
            version=version,
            name=name,
            rows=1,
            column_kinds={"x": "numerical"},
            created_at_ns=0,
        )

    with migrated_engine.begin() as connection:
        pin(None, "old")
        wide = pin(None, "model-wide")
        own = pin("v2", "own")
        assert active_reference(connection, "m", "v2").id == own
        assert active_reference(connection, "m", "v1").id == wide
        assert active_reference(connection, "m", None).name == "model-wide"
        assert active_reference(connection, "other", None) is None


def test_findings_are_listed_by_status_and_model_with_their_report(migrated_engine):
    def add(model, fingerprint, status):
        return insert_finding(
            connection,
            {
                "fingerprint": fingerprint,
                "model": model,
                "version": "v1",
                "kind": FindingKind.DATA_DRIFT,
                "subject": "age",
                "severity": Severity.WARNING,
                "status": status,
                "title": "age drifted",
                "evidence": {"score": 0.1},
                "window_start_ns": 0,
                "window_end_ns": 10,
                "first_seen_ns": 10,
                "last_seen_ns": 10,
                "occurrences": 1,
            },
        )

    with migrated_engine.begin() as connection:
        first = add("m", "f1", FindingStatus.PENDING)
        second = add("m", "f2", FindingStatus.OPEN)
        add("other", "f3", FindingStatus.OPEN)
        update_finding(connection, first, {"status": FindingStatus.RESOLVED})
        set_report_path(connection, second, "/reports/finding.html")
    with migrated_engine.connect() as connection:
        assert [f.id for f in list_findings(connection, model="m")] == [second]
        resolved = list_findings(connection, statuses=[FindingStatus.RESOLVED])
        assert [(f.id, f.status, f.severity) for f in resolved] == [(first, "resolved", "warning")]
        assert set(active_findings(connection, "m")) == {"f2"}
        assert finding_report_path(connection, second) == "/reports/finding.html"
        assert finding_report_path(connection, first) is None


def test_dead_letters_are_read_newest_first_up_to_the_limit(migrated_engine):
    table = DeadLetter.__table__
    with migrated_engine.begin() as connection:
        for i in range(3):
            connection.execute(
                sa.insert(table).values(
                    received_at_ns=i,
                    source="http",
                    event_index=-1,
                    reason=f"bad {i}",
                    raw=b"{}",
                    raw_size=2,
                )
            )
    with migrated_engine.connect() as connection:
        rows = recent_dead_letters(connection, limit=2)
    assert [row.reason for row in rows] == ["bad 2", "bad 1"]
