"""The drift table over HTTP: every feature's test per window, paged, each cell linked to
its finding and (when the finding has one) its Evidently report. A real server on both
databases."""

from __future__ import annotations

import httpx
import pytest
import test_server_findings as findings_scenario
from drift_cell_rows import drift_cell, drift_finding
from ingest_events import EventFactory

from inferloop.store.drift_cells import write_cells

NS = 1_000_000_000
T0_S = 1_800_000_000
platform = findings_scenario.platform
"""The findings tests' server and analyzer (reports into the test's folder)."""


def _cell(minute: int, feature: str, **values) -> dict:
    return drift_cell((T0_S + minute * 60) * NS, feature, **values)


def _get(base_url: str, model: str = "fraud", **params) -> httpx.Response:
    return httpx.get(f"{base_url}/v1/models/{model}/drift", params=params)


def test_cells_are_paged_in_window_order_and_link_their_report(platform, migrated_engine, tmp_path):
    base_url, _ = platform
    report = tmp_path / "report.html"
    report.write_text("<!doctype html><p>report</p>")
    with migrated_engine.begin() as connection:
        finding = drift_finding(connection, status="open", report_path=str(report))
        cells = [_cell(m, f) for m in range(5) for f in ("age", "income")]
        cells[6] = _cell(3, "age", drifted=True, alarmed=True, finding_id=finding, score=1e-8)
        cells[7] = _cell(3, "income", drifted=True, score=0.01)
        write_cells(connection, cells)

    span = {"start_s": T0_S, "end_s": T0_S + 3600}
    seen, cursor = [], None
    while True:
        response = _get(base_url, limit=3, **span, **({"cursor": cursor} if cursor else {}))
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 3
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [(c["window_end_ns"], c["feature"]) for c in seen] == [
        (c["window_end_ns"], c["feature"]) for c in cells
    ]
    drifted = seen[6]
    assert drifted["alarmed"] and drifted["finding_id"] == finding
    assert drifted["finding_status"] == "open"
    assert drifted["report_url"] == f"/v1/findings/{finding}/report"
    assert httpx.get(base_url + drifted["report_url"]).text.startswith("<!doctype html>")
    quiet, crossed = seen[0], seen[7]
    assert quiet["report_url"] is None and "no drift in this window" in quiet["report"]
    assert crossed["report_url"] is None and "raised no finding" in crossed["report"]

    later = _get(base_url, start_s=T0_S + 120, end_s=T0_S + 180).json()["items"]
    assert [c["window_end_ns"] for c in later] == [(T0_S + 120) * NS] * 2


def test_an_unknown_model_is_404_and_a_known_one_without_cells_is_empty(platform) -> None:
    base_url, _ = platform
    missing = _get(base_url, "nope", start_s=T0_S, end_s=T0_S + 60)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert "nope" in missing.json()["detail"]

    factory = EventFactory(model="quiet", version="1")
    events = [factory.inference() for _ in range(3)]
    assert httpx.post(f"{base_url}/v1/events", content=factory.batch_bytes(events)).is_success
    assert _get(base_url, "quiet").json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start_s": T0_S + 60, "end_s": T0_S}, "start_s"),
        ({"limit": 0}, "query.limit"),
        ({"limit": 1001}, "query.limit"),
        ({"end_s": 10**12}, "query.end_s"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "eyJmZWF0dXJlIjoxfQ"}, "cursor"),
    ],
)
def test_invalid_parameters_are_422_problems_naming_them(platform, params, field) -> None:
    base_url, _ = platform
    response = _get(base_url, **params)
    assert response.status_code == 422
    body = response.json()
    assert body["status"] == 422
    assert field in body["detail"] or field in str(body.get("errors"))


def test_an_analyzer_run_shows_every_feature_and_the_drifted_ones_report(platform) -> None:
    """The findings test's scenario (a pinned reference, `age` drifted in version 2), read
    back as cells."""
    findings_scenario.test_drift_against_an_uploaded_reference_is_listed_with_its_report(platform)
    base_url, _ = platform

    cells = {(c["kind"], c["feature"]): c for c in _get(base_url).json()["items"]}
    assert {("data_drift", "age"), ("data_drift", "country"), ("dataset_drift", "*")} <= set(cells)
    age, country = cells["data_drift", "age"], cells["data_drift", "country"]
    assert age["alarmed"] and age["baseline"]["type"] == "pinned" and age["version"] == "2"
    assert httpx.get(base_url + age["report_url"]).status_code == 200
    assert not country["alarmed"] and country["report_url"] is None
