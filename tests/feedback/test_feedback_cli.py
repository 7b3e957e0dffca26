"""The feedback loop from the terminal: `inferloop registry`, `snapshots`, `retrain`, `lineage`
on a real SQLite store, through the same functions as the API."""

from __future__ import annotations

import json

import pytest
from ingest_events import EventFactory

from inferloop.app.cli import main
from inferloop.collector import IngestPipeline, InputMessage
from inferloop.feedback import REDEPLOY_REQUESTED, RETRAIN_REQUESTED
from inferloop.store import upgrade
from inferloop.store.base import create_engine_for
from inferloop.store.feedback_pages import requests_page


@pytest.fixture
def store(tmp_path) -> list[str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)
    return ["--database-url", url, "--data-dir", str(tmp_path)]


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def _queued(store: list[str]) -> list[dict]:
    engine = create_engine_for(store[1])
    with engine.connect() as connection:
        rows = requests_page(connection, filters={}, after=None, limit=100)
    engine.dispose()
    return rows


def test_register_move_history_and_live_at(store, capsys):
    status, out, _ = _run(
        capsys,
        "registry",
        "register",
        "ranker",
        "--artifact-uri",
        "s3://m/1",
        "--metric",
        "auc=0.91",
        "--who",
        "ci",
        *store,
    )
    assert status == 0 and "ranker version 1 registered" in out
    _run(capsys, "registry", "register", "ranker", "--artifact-uri", "s3://m/2", *store)

    status, out, _ = _run(
        capsys,
        "registry",
        "move",
        "ranker",
        "1",
        "--to",
        "canary",
        "--why",
        "first",
        "--command",
        "cat",
        *store,
    )
    assert status == 0 and "candidate → canary" in out and "redeploy request" in out
    assert [r["type"] for r in _queued(store)] == [REDEPLOY_REQUESTED]

    status, _, err = _run(
        capsys, "registry", "move", "ranker", "2", "--to", "live", "--why", "x", *store
    )
    assert status == 2 and "cannot move to live; allowed: canary, rolled_back" in err
    assert "Traceback" not in err

    _run(capsys, "registry", "move", "ranker", "1", "--to", "live", "--why", "ok", *store)
    status, out, _ = _run(capsys, "registry", "history", "ranker", *store)
    lines = out.splitlines()
    assert len(lines) == 4 and "production: canary → live  by" in lines[-1]
    status, out, _ = _run(capsys, "registry", "live", "ranker", *store)
    assert status == 0 and "v1 was live" in out
    status, out, _ = _run(capsys, "registry", "live", "ranker", "--at", "2020-01-01", *store)
    assert status == 1 and "no version was live" in out
    status, _, err = _run(capsys, "registry", "live", "ranker", "--at", "yesterday", *store)
    assert status == 2 and "is not a time" in err


def test_retrain_by_hand_is_one_request_per_key_and_lineage_prints_json(store, capsys):
    engine = create_engine_for(store[1])
    factory = EventFactory(model="ranker", version="v1")
    events = [factory.inference(prediction_id=f"p{i}") for i in range(6)]
    events += [factory.label(f"p{i}", i % 2) for i in range(6)]
    IngestPipeline(engine).ingest([InputMessage(factory.batch_bytes(events))], source="t")
    engine.dispose()

    status, _, err = _run(capsys, "retrain", "ranker", "--reason", "x", *store)
    assert status == 2 and "no request destination is configured" in err
    ask = ("retrain", "ranker", "--reason", "drift", "--key", "inc-1", "--command", "cat", *store)
    status, first, _ = _run(capsys, *ask)
    assert status == 0 and "queued for command" in first and "6 rows" in first
    status, again, _ = _run(capsys, *ask)
    assert "already queued before" in again
    assert first.split()[2] == again.split()[2]  # the same event id
    retrains = [r for r in _queued(store) if r["type"] == RETRAIN_REQUESTED]
    assert len(retrains) == 1

    uri = first.split("snapshot ")[1].split(" (")[0]
    status, out, _ = _run(capsys, "snapshots", "verify", uri, *store)
    assert status == 0 and "intact, 6 rows" in out

    _run(
        capsys,
        "registry",
        "register",
        "ranker",
        "--artifact-uri",
        "s3://m/1",
        "--snapshot-uri",
        uri,
        *store,
    )
    status, out, _ = _run(capsys, "lineage", "ranker", "--version", "1", *store)
    assert status == 0
    lineage = json.loads(out)
    assert lineage["subject"] == {"model": "ranker", "version": 1}
    assert [r["id"] for r in lineage["retrain_requests"]] == [first.split()[2]]
    status, _, err = _run(capsys, "lineage", *store)
    assert status == 2 and "give --finding ID" in err


def test_an_unmigrated_store_is_one_line_of_advice(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    status, _, err = _run(capsys, "registry", "history", "ranker", "--database-url", url)
    assert status == 2 and "inferloop db upgrade" in err and "Traceback" not in err
