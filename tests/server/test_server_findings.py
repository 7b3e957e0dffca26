"""Findings over HTTP: pin a reference by upload, ingest drifted traffic, read the findings
and the Evidently report they point to. A real server on both databases."""

from __future__ import annotations

import random
from collections.abc import Iterator

import httpx
import pytest
from ingest_events import EventFactory
from serving import served

from inferloop.analyzer import AnalyzerConfig, AnalyzerWorker
from inferloop.server import create_app
from inferloop.settings import Settings

# Evidently's report rendering


@pytest.fixture
def platform(migrated_engine, database_url: str, tmp_path) -> Iterator[tuple[str, AnalyzerWorker]]:
    settings = Settings(database_url=database_url, data_dir=tmp_path)
    config = AnalyzerConfig(window_s=3600, confirm_runs=1, confirm_after_s=0)
    with served(create_app(settings, engine=migrated_engine)) as url:
        yield url, AnalyzerWorker(settings, migrated_engine, config=config)


def _reference_csv(rng: random.Random, rows: int = 600) -> bytes:
    lines = ["age,country"] + [f"{rng.randint(30, 69)},{rng.choice('ab')}" for _ in range(rows)]
    return "\n".join(lines).encode()


def test_drift_against_an_uploaded_reference_is_listed_with_its_report(platform) -> None:
    base_url, analyzer = platform
    rng = random.Random(3)
    pinned = httpx.post(
        f"{base_url}/v1/models/fraud/reference",
        params={"format": "csv"},
        content=_reference_csv(rng),
    )
    assert pinned.status_code == 201, pinned.text
    assert pinned.json()["rows"] == 600 and pinned.json()["columns"] == ["age", "country"]

    factory = EventFactory(model="fraud", version="2")
    drifted = [
        factory.inference(
            inputs={"rows": [{"age": rng.randint(70, 110), "country": rng.choice("ab")}]}
        )
        for _ in range(600)
    ]
    assert (
        httpx.post(f"{base_url}/v1/events", content=factory.batch_bytes(drifted)).status_code == 200
    )
    analyzer.run_once()

    findings = httpx.get(f"{base_url}/v1/findings", params={"model": "fraud"}).json()["items"]
    drift = [f for f in findings if f["kind"] == "data_drift"]
    assert [f["subject"] for f in drift] == ["age"]
    assert drift[0]["status"] == "open" and drift[0]["version"] == "2"
    report = httpx.get(f"{base_url}{drift[0]['report_url']}")
    assert report.status_code == 200
    assert report.headers["content-type"].startswith("text/html") and len(report.content) > 10_000


def test_unreadable_reference_upload_gets_422_naming_the_format(platform) -> None:
    base_url, _ = platform
    response = httpx.post(
        f"{base_url}/v1/models/fraud/reference",
        params={"format": "parquet"},
        content=b"not parquet",
    )
    assert response.status_code == 422
    assert "parquet" in response.json()["detail"]


def test_report_of_unknown_finding_is_404(platform) -> None:
    base_url, _ = platform
    assert httpx.get(f"{base_url}/v1/findings/999/report").status_code == 404


def test_openapi_lists_the_allowed_kinds_severities_and_statuses(tmp_path) -> None:
    from inferloop.store import FindingKind, FindingStatus

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'unused.db'}", data_dir=tmp_path)
    schemas = create_app(settings).openapi()["components"]["schemas"]
    properties = schemas["FindingResponse"]["properties"]
    assert properties["kind"]["$ref"].endswith("/FindingKind")
    assert schemas["FindingKind"]["enum"] == [kind.value for kind in FindingKind]
    assert schemas["Severity"]["enum"] == ["info", "warning", "critical"]
    assert schemas["FindingStatus"]["enum"] == [status.value for status in FindingStatus]
    assert {properties["severity"]["$ref"], properties["status"]["$ref"]} == {
        "#/components/schemas/Severity",
        "#/components/schemas/FindingStatus",
    }
    assert "accuracy_drop" not in schemas["FindingKind"]["enum"]


def test_findings_and_dead_letter_routes_read_through_the_store_alone() -> None:
    import ast
    from pathlib import Path

    server = Path(__file__).resolve().parents[2] / "server"
    for name in ("routes_findings.py", "routes_dead_letters.py"):
        tree = ast.parse((server / name).read_text())
        imported = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module and not node.level
        } | {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        heavy = {m for m in imported if m.split(".")[0] in ("polars", "scipy", "sqlalchemy")}
        assert heavy == set() and not any(m.startswith("inferloop.analyzer") for m in imported), (
            name
        )
