"""The model page's version comparison, label quality, label delay and completeness panels
in a real headless Chromium, against the live server on the seeded store (`ui_seed`:
fraud v2, 1.4× slower, replaced v1 two hours ago; labeled predictions with delays from
0.4 s to 1.5 days; five events lost and nine dropped by the SDK)."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa

from inferloop.server.routes_ui import REFRESH_S

MODEL_6H = "/ui/models/fraud?range=6h"


def _open(page, url: str):
    response = page.goto(url, wait_until="networkidle")
    assert response is not None and response.status == 200
    return response


def _joined_labels(engine, start_s: int, end_s: int) -> int:
    """Labels of fraud stamped in the range whose prediction is stored, counted directly."""
    query = sa.text(
        "SELECT count(*) FROM labels l WHERE l.model = 'fraud'"
        " AND l.time_ns >= :start AND l.time_ns < :end AND EXISTS (SELECT 1 FROM events e"
        " WHERE e.model = l.model AND e.prediction_id = l.prediction_id)"
    )
    with engine.connect() as connection:
        return connection.execute(query, {"start": start_s * 10**9, "end": end_s * 10**9}).scalar()


@pytest.mark.parametrize("width", [1280, 390])
def test_the_four_panels_load_clean_and_fit_the_width(dashboard, new_page, screenshot, width):
    page, seen = new_page(width)
    _open(page, dashboard.url + MODEL_6H)

    for panel in ("version-compare", "label-quality", "label-delay", "completeness"):
        assert page.locator(f'section[data-refresh="{panel}"]').count() == 1
    assert page.locator("svg[data-quality-chart] circle").count() > 0
    assert page.locator("svg[data-delay-chart] rect[data-count]").count() == 9
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    screenshot(page, "model-panels", width)
    seen.assert_clean()


def test_the_version_comparison_names_the_slower_version_with_its_p_value(dashboard, new_page):
    page, seen = new_page()
    _open(page, dashboard.url + MODEL_6H)

    comparison = page.locator('.comparison[data-candidate="2"][data-baseline="1"]')
    verdict = comparison.locator("[data-verdict]").inner_text()
    assert verdict.startswith("v2 is slower: p95 +") and "p < 0.001" in verdict
    assert comparison.get_attribute("data-outcome") == "worse"
    p95 = comparison.locator('tr[data-metric="p95"]')
    assert float(p95.get_attribute("data-p-value")) < 0.001
    assert "median test" in p95.inner_text()
    assert "Fisher" in comparison.locator('tr[data-metric="error rate"]').inner_text()
    live = page.locator('table.versions-served tr[data-version="2"]').inner_text()
    assert "live" in live
    seen.assert_clean()


def test_a_range_with_one_version_says_there_is_nothing_to_compare(dashboard, new_page):
    page, seen = new_page()
    _open(page, dashboard.url + "/ui/models/fraud?range=1h")

    assert "Only v2 served in the last 1h" in page.locator("[data-compare-empty]").inner_text()
    assert page.locator(".comparison").count() == 0
    seen.assert_clean()


def test_the_label_delay_bars_sum_to_the_joined_labels_in_the_store(dashboard, new_page):
    page, seen = new_page()
    _open(page, dashboard.url + "/ui/models/fraud?range=7d")
    figures = page.locator("dl[data-completeness]")
    start_s, end_s = (int(figures.get_attribute(f"data-{e}-s")) for e in ("start", "end"))

    bars = page.locator("svg[data-delay-chart] rect[data-count]")
    counts = bars.evaluate_all("rs => rs.map(r => Number(r.dataset.count))")
    names = bars.evaluate_all("rs => rs.map(r => r.dataset.bucket)")

    assert sum(counts) == _joined_labels(dashboard.engine, start_s, end_s) > 0
    assert int(page.locator("svg[data-delay-chart]").get_attribute("data-joined")) == sum(counts)
    by_name = dict(zip(names, counts, strict=True))
    assert all(by_name[n] > 0 for n in ("< 1 s", "1–10 s", "1–10 min", "6–24 h", "1–7 d"))
    assert "wait for a prediction not stored" in page.locator("#label-delay").inner_text()
    seen.assert_clean()


def test_the_label_quality_chart_shows_accuracy_per_bucket_and_v2s_drop(dashboard, new_page):
    page, seen = new_page()
    _open(page, dashboard.url + MODEL_6H)

    points = page.locator("svg[data-quality-chart] circle[data-value]")
    values = points.evaluate_all("ps => ps.map(p => Number(p.dataset.value))")
    counts = points.evaluate_all("ps => ps.map(p => Number(p.dataset.count))")
    labeled = int(page.locator("#label-quality dl").get_attribute("data-labeled"))

    assert len(values) >= 20 and all(0 <= v <= 1 for v in values)
    assert sum(counts) == labeled
    v1 = page.locator('#label-quality [data-version="1"] dd').inner_text()
    v2 = page.locator('#label-quality [data-version="2"] dd').inner_text()
    assert float(v1.rstrip("%")) > float(v2.rstrip("%"))
    seen.assert_clean()


def test_the_completeness_panel_equals_the_apis_numbers(dashboard, new_page):
    page, seen = new_page()
    _open(page, dashboard.url + "/ui/models/fraud?range=7d")
    figures = page.locator("dl[data-completeness]")
    start_s, end_s = (figures.get_attribute(f"data-{e}-s") for e in ("start", "end"))

    api = httpx.get(
        f"{dashboard.url}/v1/models/fraud/completeness",
        params={"start_s": start_s, "end_s": end_s},
        timeout=30,
    ).json()

    def shown(field: str) -> int:
        return int(figures.locator(f'[data-field="{field}"]').inner_text().replace(",", ""))

    for field in ("emitted", "received", "lost", "sdk_dropped_total"):
        assert shown(field) == api[field], field
    assert api["lost"] == 5 and api["sdk_dropped_total"] == 9
    reasons = page.locator("table.drops tr[data-reason]")
    found = reasons.evaluate_all(
        "rs => Object.fromEntries(rs.map(r => [r.dataset.reason,"
        " Number(r.cells[1].textContent.replace(/,/g, ''))]))"
    )
    assert found == api["sdk_dropped"] == {"queue_full": 7, "send_failed": 2}
    seen.assert_clean()


def test_a_quiet_models_page_says_what_each_panel_misses(dashboard, new_page):
    page, seen = new_page(390)
    _open(page, dashboard.url + "/ui/models/ranker?range=15m")

    assert "No calls of ranker in the last 15m" in page.locator("[data-compare-empty]").inner_text()
    assert "No labels arrived" in page.locator("[data-quality-empty]").inner_text()
    assert "No label for a stored prediction" in page.locator("[data-delay-empty]").inner_text()
    assert "Nothing of ranker emitted" in page.locator("[data-completeness-empty]").inner_text()
    seen.assert_clean()


def test_a_label_posted_after_load_is_counted_in_place_within_two_refreshes(dashboard, new_page):
    page, seen = new_page()
    # A week: the seeded predictions are all well inside it, so the refresh that slides the
    # window forward moves none of them out (at 6 h, one group of them left every 5 minutes).
    _open(page, dashboard.url + "/ui/models/fraud?range=7d")
    page.evaluate("window.__kept = true")  # gone if the page reloads
    chart = "svg[data-delay-chart]"
    before = int(page.locator(chart).get_attribute("data-joined"))

    answer = httpx.post(
        dashboard.url + "/v1/labels",
        json={"labels": [{"model": "fraud", "prediction_id": "lq-100", "label": 0}]},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text

    page.wait_for_function(
        "([selector, n]) => document.querySelector(selector)?.dataset.joined === n",
        arg=[chart, str(before + 1)],
        timeout=2 * REFRESH_S * 1000 + 2000,
    )
    assert page.evaluate("window.__kept") is True
    seen.assert_clean()
