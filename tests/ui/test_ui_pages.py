"""Every dashboard page in a real headless Chromium, against a live server on a seeded store:
no console or page error, no failed request, nothing leaving 127.0.0.1, charts drawn, the
time range in the URL driving the data, and a screenshot of each page at two widths."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest
from ingest_events import EventFactory

from inferloop.alerts import AlertEvaluator, load_config
from inferloop.server import routes_ui
from inferloop.server.routes_ui import CSP, REFRESH_S
from inferloop.store import insert_finding
from inferloop.store.findings import update_finding

PAGES = {
    "overview": "/ui/?range=24h",
    "model": "/ui/models/fraud?range=6h",
    "findings": "/ui/findings",
    "finding": "/ui/findings/{drift}",
    "alerts": "/ui/alerts",
    "feedback": "/ui/feedback/ranker",
    "feedback-fraud": "/ui/feedback/fraud",
}


SILENCE_TEST_ALERTING = """
rules:
  - name: probe
    matchers: ['feature="ui-silence-probe"']
route:
  receiver: oncall
  group_by: [model]
  group_wait: 30s
receivers:
  - name: oncall
    type: webhook
    url: http://127.0.0.1:9/
    secret: whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=
"""


def _insert_finding(engine, *, model: str, severity: str, title: str) -> int:
    now = time.time_ns()
    with engine.begin() as connection:
        return insert_finding(
            connection,
            {
                "fingerprint": f"ui-test-{title}",
                "model": model,
                "kind": "data_drift",
                "subject": "ui-silence-probe",
                "severity": severity,
                "status": "open",
                "title": title,
                "evidence": {},
                "window_start_ns": now - 3600 * 10**9,
                "window_end_ns": now,
                "first_seen_ns": now,
                "last_seen_ns": now,
                "opened_at_ns": now,
                "occurrences": 1,
            },
        )


def _open(page, url: str):
    response = page.goto(url, wait_until="networkidle")
    assert response is not None
    return response


def _series_points(series: dict, percentile: str = "p95") -> int:
    return sum(v is not None for v in series["total"][percentile])


@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("name", list(PAGES))
def test_page_loads_clean_with_nothing_leaving_loopback(
    dashboard, new_page, screenshot, name, width
):
    page, seen = new_page(width)
    path = PAGES[name].format(drift=dashboard.seeded.drift_finding_id)

    response = _open(page, dashboard.url + path)

    assert response.status == 200
    assert response.headers["content-security-policy"] == CSP
    assert page.locator("main h1").count() == 1
    if name == "model":
        for chart in ("latency", "throughput", "errors"):
            svg = page.locator(f'svg[data-chart="{chart}"][data-drawn="1"]')
            svg.wait_for()
            assert int(svg.get_attribute("data-points")) > 0
            assert svg.locator("path").count() >= 1
        page.locator('svg[data-chart="gpu"][data-drawn="1"]').wait_for()  # no GPU here: empty
        assert "measured GPU time" in page.locator('[data-state="gpu"]').inner_text()
        assert sum(r.count("/ui/data/models/fraud/series") for r in seen.requests) == 1
    if name == "overview":
        assert page.locator('svg[data-spark][data-drawn="1"] polyline').count() == 2
    screenshot(page, name, width)
    seen.assert_clean()
    assert any(r.endswith("/ui/static/app.js") or "/ui/static/app.js?" in r for r in seen.requests)


def test_overview_lists_each_model_with_calls_error_rate_p95_and_open_findings(dashboard, new_page):
    page, seen = new_page()
    _open(page, dashboard.url + "/ui/?range=7d")

    cards = page.locator("article.card")
    assert sorted(cards.evaluate_all("cs => cs.map(c => c.dataset.model)")) == [
        "fraud",
        "ranker",
        "search",
    ]  # ranker: a finding, no traffic
    fraud = page.locator('article.card[data-model="fraud"]')
    assert int(fraud.locator('[data-field="count"]').inner_text().replace(",", "")) > 1000
    assert fraud.locator('[data-field="error_rate"]').inner_text().endswith("%")
    assert re.fullmatch(r"[\d.,]+ ms", fraud.locator('[data-field="p95"]').inner_text())
    assert fraud.locator('[data-field="open_findings"]').inner_text() == "2"
    attention = page.locator("main table tbody tr")
    assert attention.first.locator(".sev").inner_text() == "critical"
    seen.assert_clean()


def test_latency_chart_has_as_many_points_as_the_series_and_version_markers(dashboard, new_page):
    page, seen = new_page()
    with page.expect_response(re.compile(r"/ui/data/models/fraud/series\?range=24h")) as got:
        _open(page, dashboard.url + "/ui/models/fraud?range=24h")
    series = got.value.json()
    svg = page.locator('svg[data-chart="latency"][data-drawn="1"]')
    svg.wait_for()

    assert int(svg.get_attribute("data-points")) == _series_points(series)
    assert sorted(series["versions"]) == ["1", "2"]
    assert svg.locator("path[data-line]").count() == 3  # all versions, v1, v2
    labels = [m["label"] for m in series["markers"]]
    assert labels == ["v2 → canary", "v1 → retired", "v2 → live"] or "v2 → live" in labels
    assert svg.locator("line.marker").count() == len(series["markers"]) >= 2
    seen.assert_clean()


def test_changing_the_range_updates_the_url_and_the_data_requested(dashboard, new_page):
    page, seen = new_page()
    with page.expect_response(re.compile(r"series\?range=1h$")) as first:
        _open(page, dashboard.url + "/ui/models/fraud?range=1h")
    hour = first.value.json()
    page.locator('svg[data-chart="latency"][data-drawn="1"]').wait_for()

    with page.expect_response(re.compile(r"series\?range=7d$")) as second:
        page.locator('nav.range a[data-range="7d"]').click()
    week = second.value.json()
    page.locator('svg[data-chart="latency"][data-drawn="1"]').wait_for()

    assert page.url.endswith("range=7d&p=p95")
    assert page.locator('nav.range a[aria-current="true"]').inner_text() == "7d"
    assert (hour["range"], hour["step_s"], len(hour["total"]["t"])) == ("1h", 60, 60)
    assert (week["range"], week["step_s"]) == ("7d", 3600)
    assert len(week["total"]["t"]) == -(-(week["end_s"] - week["start_s"]) // 3600) >= 168
    assert week["start_s"] < hour["start_s"] - 6 * 86400
    assert sum(week["total"]["count"]) > sum(hour["total"]["count"])
    points = int(page.locator('svg[data-chart="latency"]').get_attribute("data-points"))
    assert points == _series_points(week)

    with page.expect_response(re.compile(r"series\?range=1h$")):
        page.go_back()
    assert page.url.endswith("range=1h")
    seen.assert_clean()


def test_percentile_picker_redraws_the_chart_and_lives_in_the_url(dashboard, new_page):
    page, seen = new_page()
    _open(page, dashboard.url + "/ui/models/fraud?range=6h")
    svg = page.locator('svg[data-chart="latency"][data-drawn="1"]')
    svg.wait_for()
    before = svg.locator('path[data-line^="all"]').get_attribute("d")

    page.locator("select[data-percentile-select]").select_option("p50")

    assert page.url.endswith("p=p50")
    assert svg.locator('path[data-line="all p50"]').count() == 1
    assert svg.locator('path[data-line^="all"]').get_attribute("d") != before
    assert page.locator('nav.range a[data-range="24h"]').get_attribute("href").endswith("p=p50")
    page.reload(wait_until="networkidle")
    assert page.locator("select[data-percentile-select]").input_value() == "p50"
    seen.assert_clean()


def test_finding_page_shows_drift_per_feature_and_the_report_in_a_sandbox(dashboard, new_page):
    page, seen = new_page()
    _open(page, f"{dashboard.url}/ui/findings/{dashboard.seeded.drift_finding_id}")

    rows = page.locator("table[data-features] tbody tr")
    assert rows.count() == 2
    age = page.locator('tr[data-feature="age"]')
    assert age.get_attribute("class") == "drifted"
    cells = age.locator("td").all_inner_texts()
    assert cells[2] == "ks" and cells[3].startswith("0.0004") and cells[4] == "0.0500"
    assert page.locator('tr[data-feature="country"]').get_attribute("class") is None
    frame = page.locator("iframe.report")
    assert frame.get_attribute("sandbox") == "allow-scripts"
    assert page.frame_locator("iframe.report").locator("h1").inner_text() == "Data drift report"
    seen.assert_clean()


def test_alerts_page_shows_deliveries_and_silences(dashboard, new_page):
    page, seen = new_page()
    _open(page, dashboard.url + "/ui/alerts")

    row = page.locator(f'tr[data-notification="{dashboard.seeded.notification_id}"]')
    assert "delivered" in row.inner_text()
    assert "attempt 1" in page.locator("tr.attempt").first.inner_text()
    silence = page.locator(f'tr[data-silence="{dashboard.seeded.silence_id}"]')
    assert "active" in silence.inner_text() and 'model="search"' in silence.inner_text()
    seen.assert_clean()


def test_feedback_page_shows_versions_checks_requests_and_lineage(dashboard, new_page):
    page, seen = new_page()
    _open(page, dashboard.url + "/ui/feedback/ranker")

    assert "rolled_back" in page.locator('tr[data-version="2"]').inner_text()
    text = page.locator("main").inner_text()
    assert "rollback" in text and "retrain" in text and "redeploy" in text
    page.locator('tr[data-version="2"] a', has_text="lineage").click()
    page.wait_for_load_state("networkidle")
    assert "/ui/lineage/ranker/2" in page.url
    assert "snapshot" in page.locator("pre.evidence").inner_text()
    seen.assert_clean()


def test_unknown_model_gives_the_404_page(dashboard, new_page):
    page, seen = new_page()
    response = _open(page, dashboard.url + "/ui/models/no-such-model")

    assert response.status == 404
    assert "no model 'no-such-model'" in page.locator("main").inner_text()
    # The document's 404 is the answer asked for, not a failure of the page.
    assert [e for e in seen.console_errors if "404" not in e] == []
    assert seen.page_errors == [] and seen.foreign == []


def test_a_finding_raised_after_load_shows_up_in_place_within_two_refreshes(dashboard, new_page):
    page, seen = new_page()
    _open(page, dashboard.url + "/ui/findings")
    page.evaluate("window.__kept = true")  # gone if the page reloads
    with dashboard.engine.begin() as connection:
        now = time.time_ns()
        late = insert_finding(
            connection,
            {
                "fingerprint": "late",
                "model": "search",
                "kind": "throughput_change",
                "subject": "calls",
                "severity": "info",
                "status": "open",
                "title": "search: throughput fell by half",
                "evidence": {},
                "window_start_ns": now - 3600 * 10**9,
                "window_end_ns": now,
                "first_seen_ns": now,
                "last_seen_ns": now,
                "occurrences": 1,
            },
        )

    row = page.locator(f'tr[data-finding="{late}"]')
    row.wait_for(timeout=2 * REFRESH_S * 1000 + 2000)

    assert "throughput fell by half" in row.inner_text()
    assert page.evaluate("window.__kept") is True
    assert "updated" in page.locator("[data-updated]").inner_text()
    seen.assert_clean()


def test_an_event_ingested_after_load_is_counted_in_place_within_two_refreshes(dashboard, new_page):
    page, seen = new_page()
    _open(page, dashboard.url + "/ui/?range=24h")
    page.evaluate("window.__kept = true")  # gone if the page reloads
    # ranker: a card for its finding, and no calls of its own, so nothing at the edge of the
    # range can leave it when the refresh slides the window (search's oldest calls can).
    calls = page.locator('article.card[data-model="ranker"] [data-field="count"]')
    before = int(calls.inner_text().replace(",", ""))
    factory = EventFactory(model="ranker", version="2")
    factory.base_time_ns = time.time_ns() - 2 * 3600 * 10**9  # outside any 15-minute view
    answer = httpx.post(
        dashboard.url + "/v1/events",
        content=factory.batch_bytes([factory.inference() for _ in range(7)]),
        timeout=30,
    )
    assert answer.status_code == 200 and answer.json()["stored"] == 7

    expected = f"{before + 7:,}"
    page.wait_for_function(
        "([selector, text]) => document.querySelector(selector)?.textContent === text",
        arg=['article.card[data-model="ranker"] [data-field="count"]', expected],
        timeout=2 * REFRESH_S * 1000 + 2000,
    )
    assert page.evaluate("window.__kept") is True
    seen.assert_clean()


def test_the_first_chart_is_painted_soon_after_navigation(dashboard, new_page):
    page, seen = new_page()
    painted = []
    for _ in range(5):
        _open(page, dashboard.url + "/ui/models/fraud?range=24h")
        page.locator('svg[data-chart="latency"][data-drawn="1"]').wait_for()
        painted.append(
            page.evaluate("performance.getEntriesByName('inferloop:chart-drawn')[0].startTime")
        )

    median = sorted(painted)[2]
    print(f"first chart painted after navigation: median {median:.0f} ms of {painted}")
    # The target is 700 ms (about 300 ms here when the machine is idle); the bound leaves
    # room for a CI machine whose two cores are shared.
    assert median < 1500
    seen.assert_clean()


def test_the_pages_script_stays_small_and_nothing_is_inline(dashboard):

    static = Path(routes_ui.__file__).parent / "static"
    scripts = sum(p.stat().st_size for p in static.glob("*.js"))
    assert scripts < 150 * 1024
    templates = Path(routes_ui.__file__).parent / "templates"
    for template in templates.glob("*.html"):
        text = template.read_text()
        assert "<script>" not in text and " style=" not in text and " on" + "click=" not in text
        assert re.findall(r"<script(?![^>]*\bsrc=)", text) == [], template.name
    response = httpx.get(dashboard.url + "/ui/alerts")
    assert response.headers["content-security-policy"] == CSP
    assert "'unsafe-inline'" not in CSP and "script-src 'self'" in CSP


def test_a_silence_made_and_expired_on_the_alerts_page_is_the_apis(dashboard, new_page):

    page, seen = new_page()
    _open(page, dashboard.url + "/ui/alerts")
    page.fill('form.silence textarea[name="matchers"]', 'model="fraud"\nseverity="critical"')
    page.fill('form.silence input[name="duration"]', "30m")
    page.fill('form.silence input[name="comment"]', "deploying a fix")
    with page.expect_navigation(wait_until="networkidle"):
        page.click("form.silence button")

    (made,) = [
        s
        for s in httpx.get(dashboard.url + "/v1/alerts/silences").json()["items"]
        if s["comment"] == "deploying a fix"
    ]
    assert made["matchers"] == ['model="fraud"', 'severity="critical"']
    assert made["state"] == "active"
    assert made["ends_at_ns"] - made["starts_at_ns"] == 30 * 60 * 10**9
    # A critical finding for fraud is held back while the silence lasts, and told once it ends.
    offset_s = [0.0]
    evaluator = AlertEvaluator(
        dashboard.engine,
        load_config(SILENCE_TEST_ALERTING),
        clock=lambda: time.time_ns() + int(offset_s[0] * 10**9),
    )
    finding = _insert_finding(
        dashboard.engine, model="fraud", severity="critical", title="fraud: score drifted"
    )
    try:
        offset_s[0] = 31  # past group_wait
        assert evaluator.evaluate_once() == []
        row = page.locator(f'tr[data-silence="{made["id"]}"]')
        with page.expect_navigation(wait_until="networkidle"):
            row.locator("button", has_text="Expire").click()

        after = httpx.get(f"{dashboard.url}/v1/alerts/silences/{made['id']}").json()
        assert after["state"] == "expired"
        assert row.locator("button").count() == 0
        sent = evaluator.evaluate_once()
        offset_s[0] = 100  # the alert is news once visible: group_wait again
        sent += evaluator.evaluate_once()
        assert [note.status for note in sent] == ["firing"]
        assert sent[0].alerts[0].annotations["finding_id"] == finding
    finally:
        with dashboard.engine.begin() as connection:
            update_finding(
                connection, finding, {"status": "resolved", "resolved_at_ns": time.time_ns()}
            )
    seen.assert_clean()


def test_a_bad_matcher_is_refused_with_its_reason_on_the_page(dashboard, new_page):
    page, seen = new_page()
    _open(page, dashboard.url + "/ui/alerts")
    page.fill('form.silence textarea[name="matchers"]', "not a matcher")
    with page.expect_navigation(wait_until="networkidle") as navigation:
        page.click("form.silence button")

    assert navigation.value.status == 422
    assert page.locator('[role="alert"]').inner_text() != ""
    assert [e for e in seen.console_errors if "422" not in e] == []
    assert seen.page_errors == [] and seen.foreign == []


def test_an_unknown_range_is_a_400_page_naming_the_ranges(dashboard):

    page = httpx.get(dashboard.url + "/ui/models/fraud?range=2w")
    data = httpx.get(dashboard.url + "/ui/data/models/fraud/series?range=2w")

    assert page.status_code == 400 and "use one of 15m, 1h, 6h, 24h, 7d" in page.text
    assert data.status_code == 400 and "2w" in data.json()["detail"]
