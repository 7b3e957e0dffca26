"""The registry, snapshot, rollout and lineage API on a real server, on both back ends:
status codes (201, 403, 404, 409, 422), cursor pages, live-at over a promote then a rollback,
and the lineage of a whole loop."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import polars as pl
import pytest
from chain import MODEL, PROD, whole_chain
from ingest_events import MINUTE_NS, EventFactory
from serving import served

from inferloop.collector import IngestPipeline, InputMessage
from inferloop.feedback import REDEPLOY_REQUESTED, ROLLBACK_REQUESTED, SNAPSHOT_DATA_FILE
from inferloop.server import create_app
from inferloop.settings import Settings


@pytest.fixture
def api(migrated_engine, database_url: str, tmp_path: Path) -> Iterator[httpx.Client]:
    settings = Settings(database_url=database_url, data_dir=tmp_path)
    with (
        served(create_app(settings, engine=migrated_engine)) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        yield client


def _register(api: httpx.Client, **extra) -> dict:
    body = {"artifact_uri": "s3://models/ranker", "who": "ci", **extra}
    response = api.post(f"/v1/models/{MODEL}/versions", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _move(api: httpx.Client, version: int, to: str, *, environment: str = PROD):
    body = {"to": to, "environment": environment, "who": "ops", "why": f"to {to}"}
    return api.post(f"/v1/models/{MODEL}/versions/{version}/moves", json=body)


def _all_pages(api: httpx.Client, path: str, **params) -> list[list[dict]]:
    pages, cursor = [], None
    while True:
        response = api.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        pages.append(response.json()["items"])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return pages


def test_versions_are_numbered_listed_in_pages_and_shown(api):
    numbers = [_register(api, metrics={"auc": 0.9 + i / 100})["version"] for i in range(3)]
    assert numbers == [1, 2, 3]
    pages = _all_pages(api, f"/v1/models/{MODEL}/versions", limit=2)
    assert [[v["version"] for v in page] for page in pages] == [[1, 2], [3]]
    shown = api.get(f"/v1/models/{MODEL}/versions/2").json()
    assert shown["metrics"] == {"auc": 0.91} and shown["states"] == {}
    assert shown["registered_by"] == "ci"


def test_registry_errors_are_404_409_and_422_with_clear_messages(api):
    _register(api)
    missing = api.get(f"/v1/models/{MODEL}/versions/7")
    assert missing.status_code == 404 and "not registered" in missing.json()["detail"]
    assert _move(api, 7, "canary").status_code == 404
    illegal = _move(api, 1, "live")
    assert illegal.status_code == 409
    assert "cannot move to live; allowed: canary, rolled_back" in illegal.json()["detail"]
    assert _move(api, 1, "sideways").status_code == 422
    empty = api.post(f"/v1/models/{MODEL}/versions", json={"artifact_uri": "", "who": "ci"})
    assert empty.status_code == 422
    bad_cursor = api.get(f"/v1/models/{MODEL}/versions", params={"cursor": "nonsense"})
    assert bad_cursor.status_code == 422
    assert api.get(f"/v1/models/{MODEL}/live").status_code == 422  # environment is required
    bad_time = api.get(f"/v1/models/{MODEL}/live", params={"environment": PROD, "at": "soon"})
    assert bad_time.status_code == 422 and "ISO 8601" in bad_time.json()["detail"]


def test_live_at_answers_over_a_promote_then_a_rollback(api):
    _register(api)
    _register(api)
    assert _move(api, 1, "canary").status_code == 201
    first_live = _move(api, 1, "live").json()["moves"][-1]["at_ns"]
    canary = _move(api, 2, "canary").json()
    assert canary["redeploy_request_id"] and canary["redeploy_destinations"] == []
    promoted = _move(api, 2, "live").json()["moves"]
    assert [(m["version"], m["to_state"]) for m in promoted] == [(1, "retired"), (2, "live")]
    rolled_back = _move(api, 2, "rolled_back").json()["moves"]
    assert [(m["version"], m["to_state"]) for m in rolled_back] == [
        (2, "rolled_back"),
        (1, "live"),
    ]

    def live(at_ns: int) -> int | None:
        params = {"environment": PROD, "at_ns": at_ns}
        return api.get(f"/v1/models/{MODEL}/live", params=params).json()["version"]

    assert live(first_live - 1) is None
    assert live(first_live) == 1
    assert live(promoted[-1]["at_ns"]) == 2
    assert live(rolled_back[-1]["at_ns"]) == 1
    seconds = api.get(
        f"/v1/models/{MODEL}/live", params={"environment": PROD, "at": str(time.time())}
    )
    assert seconds.json()["version"] == 1
    staging = api.get(f"/v1/models/{MODEL}/live", params={"environment": "staging"}).json()
    assert staging["version"] is None and staging["environment"] == "staging"
    states = {
        v["version"]: v["states"] for v in api.get(f"/v1/models/{MODEL}/versions").json()["items"]
    }
    assert states == {1: {PROD: "live"}, 2: {PROD: "rolled_back"}}

    pages = _all_pages(api, f"/v1/models/{MODEL}/history", limit=3)
    assert [len(page) for page in pages] == [3, 3, 3]
    moves = [(m["version"], m["from_state"], m["to_state"]) for page in pages for m in page]
    assert moves == [
        (1, None, "candidate"),
        (2, None, "candidate"),
        (1, "candidate", "canary"),
        (1, "canary", "live"),
        (2, "candidate", "canary"),
        (1, "live", "retired"),
        (2, "canary", "live"),
        (2, "live", "rolled_back"),
        (1, "retired", "live"),
    ]
    only_two = _all_pages(api, f"/v1/models/{MODEL}/history", version=2)
    assert [m["to_state"] for m in only_two[0]] == ["candidate", "canary", "live", "rolled_back"]


def test_rollout_checks_requests_and_lineage_of_a_whole_loop(api, migrated_engine):
    chain = whole_chain(migrated_engine)
    checks = _all_pages(api, f"/v1/models/{MODEL}/rollouts/{chain.candidate}/checks", limit=1)
    assert len(checks) == chain.checks and all(len(page) == 1 for page in checks)
    last = checks[-1][0]
    assert last["outcome"] == "fail" and last["check_number"] == chain.checks
    assert last["evidence"]["decision"]["metrics"] and last["live_version"] == 1
    assert api.get(f"/v1/models/{MODEL}/rollouts/9/checks").status_code == 404
    none_yet = api.get(f"/v1/models/{MODEL}/rollouts/1/checks").json()
    assert none_yet == {"items": [], "next_cursor": None}

    pages = _all_pages(api, "/v1/feedback/requests", model=MODEL, limit=2)
    rows = [row for page in pages for row in page]
    assert [len(page) for page in pages] == [2, 2]
    assert {(r["type"], r["destination"]) for r in rows} == {
        ("io.inferloop.model.retrain.requested", "hook"),
        ("io.inferloop.model.retrain.requested", "kafka"),
        (REDEPLOY_REQUESTED, "hook"),
        (ROLLBACK_REQUESTED, "hook"),
    }
    assert all(r["state"] == "pending" and r["attempts"] == 0 for r in rows)
    rollback = [r for r in rows if r["type"] == ROLLBACK_REQUESTED]
    assert [r["event_id"] for r in rollback] == [chain.rollback_id]
    assert rollback[0]["subject"] == f"{MODEL}/{chain.candidate}"
    only = api.get("/v1/feedback/requests", params={"type": REDEPLOY_REQUESTED}).json()
    assert [r["event_id"] for r in only["items"]] == [chain.redeploy_id]

    lineage = api.get("/v1/lineage", params={"finding_id": chain.finding_id})
    assert lineage.status_code == 200, lineage.text
    document = lineage.json()
    assert [f["id"] for f in document["findings"]] == [chain.finding_id]
    assert [r["id"] for r in document["retrain_requests"]] == [chain.retrain_id]
    (version,) = document["versions"]
    assert version["version"] == chain.candidate
    assert [r["id"] for r in version["rollback_requests"]] == [chain.rollback_id]
    assert version["moves"][-1]["to_state"] == "rolled_back"
    back = api.get("/v1/lineage", params={"model": MODEL, "version": chain.candidate}).json()
    assert [f["id"] for f in back["findings"]] == [chain.finding_id]

    assert api.get("/v1/lineage", params={"finding_id": 999}).status_code == 404
    assert api.get("/v1/lineage", params={"model": MODEL, "version": 9}).status_code == 404
    assert api.get("/v1/lineage").status_code == 422
    assert api.get("/v1/lineage", params={"model": MODEL}).status_code == 422


def _labeled_traffic(engine) -> EventFactory:
    factory = EventFactory(model="fraud", version="v1")
    events = [factory.inference(prediction_id=f"p{i}") for i in range(5)]
    events += [factory.label(f"p{i}", "ok" if i % 2 else "fraud") for i in range(4)]
    result = IngestPipeline(engine).ingest([InputMessage(factory.batch_bytes(events))], source="t")
    assert result.stored == len(events)
    return factory


def test_snapshots_export_list_verify_and_refuse(api, migrated_engine, tmp_path):
    factory = _labeled_traffic(migrated_engine)
    body = {"start_ns": factory.base_time_ns, "end_ns": factory.base_time_ns + MINUTE_NS}
    exported = api.post("/v1/models/fraud/snapshots", json=body)
    assert exported.status_code == 201, exported.text
    snapshot = exported.json()
    assert snapshot["manifest"]["row_count"] == 4 and snapshot["manifest"]["labeled_count"] == 4
    assert Path(snapshot["uri"]).parent == tmp_path / "snapshots"

    again = api.post("/v1/models/fraud/snapshots", json=body | {"label_as_of_ns": None})
    assert again.status_code == 409 and "already exists" in again.json()["detail"]
    unlabeled = api.post("/v1/models/fraud/snapshots", json=body | {"include_unlabeled": True})
    assert unlabeled.status_code == 201 and unlabeled.json()["manifest"]["row_count"] == 5

    pages = _all_pages(api, "/v1/snapshots", limit=1)
    assert len(pages) == 2
    listed = {item["content_hash"]: item for page in pages for item in page}
    assert set(listed) == {snapshot["content_hash"], unlabeled.json()["content_hash"]}
    assert listed[snapshot["content_hash"]]["row_count"] == 4
    assert api.get("/v1/snapshots", params={"model": "other"}).json()["items"] == []
    one = api.get("/v1/snapshots", params={"uri": snapshot["uri"]}).json()["items"]
    assert [item["content_hash"] for item in one] == [snapshot["content_hash"]]

    verified = api.get("/v1/snapshots/verify", params={"uri": snapshot["uri"]})
    assert verified.status_code == 200 and verified.json()["verified"] is True
    assert verified.json()["row_count"] == 4

    data = Path(snapshot["uri"]) / SNAPSHOT_DATA_FILE
    frame = pl.read_parquet(data)
    frame.with_columns(pl.lit("fraud").alias("label")).write_parquet(data)
    tampered = api.get("/v1/snapshots/verify", params={"uri": snapshot["uri"]})
    assert tampered.status_code == 409
    assert "the data was changed after export" in tampered.json()["detail"]

    missing = api.get("/v1/snapshots/verify", params={"uri": str(tmp_path / "snapshots" / "x")})
    assert missing.status_code == 404
    outside = api.get("/v1/snapshots/verify", params={"uri": str(tmp_path)})
    assert outside.status_code == 403 and "only under" in outside.json()["detail"]
    elsewhere = api.post(
        "/v1/models/fraud/snapshots", json=body | {"destination": str(tmp_path / "elsewhere")}
    )
    assert elsewhere.status_code == 403
    empty_range = body | {"end_ns": body["start_ns"]}
    refused = api.post("/v1/models/fraud/snapshots", json=empty_range)
    assert refused.status_code == 422 and "empty time range" in refused.json()["detail"]
    future = api.post("/v1/models/fraud/snapshots", json=body | {"label_as_of_ns": 2**62})
    assert future.status_code == 422 and "future" in future.json()["detail"]


def test_a_retrain_asked_by_hand_queues_one_request_per_key_with_its_snapshot(
    migrated_engine, database_url, tmp_path
):
    _labeled_traffic(migrated_engine)
    open_settings = Settings(database_url=database_url, data_dir=tmp_path)
    with served(create_app(open_settings, engine=migrated_engine)) as url:
        nobody = httpx.post(f"{url}/v1/models/fraud/retrain", json={"reason": "by hand"})
    assert nobody.status_code == 409 and "no request destination" in nobody.json()["detail"]

    settings = Settings(database_url=database_url, data_dir=tmp_path, feedback={"command": "cat"})
    body = {"reason": "labels say fraud is missed", "who": "ana", "idempotency_key": "inc-42"}
    with served(create_app(settings, engine=migrated_engine)) as url:
        first = httpx.post(f"{url}/v1/models/fraud/retrain", json=body, timeout=30)
        again = httpx.post(f"{url}/v1/models/fraud/retrain", json=body, timeout=30)
        other = httpx.post(f"{url}/v1/models/fraud/retrain", json=body | {"idempotency_key": "x"})
        queued = httpx.get(f"{url}/v1/feedback/requests", params={"model": "fraud"}).json()
    assert first.status_code == 202, first.text
    assert first.json()["queued"] is True and again.json()["queued"] is False
    assert again.json()["event_id"] == first.json()["event_id"] != other.json()["event_id"]
    event = first.json()["event"]
    assert event["type"] == "io.inferloop.model.retrain.requested"
    snapshot = event["data"]["snapshot"]
    assert Path(snapshot["uri"]).parent == tmp_path / "snapshots"
    assert pl.read_parquet(Path(snapshot["uri"]) / SNAPSHOT_DATA_FILE).height == 4
    assert sorted(item["event_id"] for item in queued["items"]) == sorted(
        [first.json()["event_id"], other.json()["event_id"]]
    )
