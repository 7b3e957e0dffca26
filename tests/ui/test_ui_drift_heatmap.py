"""The model page's drift heatmap in a real headless Chromium: features × windows cells
from the drift table, a drifted cell coloured as drifted that opens its finding, the
range in the URL driving the columns, and an empty state that says what is missing."""

from __future__ import annotations

import httpx

from inferloop.server.ui_drift import HEATMAP_COLUMNS

ALARM_RGB = "rgb(180, 35, 24)"
"""`.hm-alarm` in style.css."""


def _open(page, url: str):
    response = page.goto(url, wait_until="networkidle")
    assert response is not None and response.status == 200
    return response


def test_the_heatmap_has_a_cell_per_feature_and_window_and_the_drifted_one_opens_its_finding(
    dashboard, new_page, screenshot
):
    page, seen = new_page()
    _open(page, dashboard.url + "/ui/models/fraud?range=6h")

    table = page.locator("table[data-heatmap]")
    rows, columns = int(table.get_attribute("data-rows")), int(table.get_attribute("data-columns"))
    assert (rows, columns) == (3, 45)  # age, country, dataset; 6 h in 8-minute columns
    assert page.locator("table[data-heatmap] tbody tr").count() == rows
    assert page.locator("table[data-heatmap] tbody td.hm").count() == rows * columns
    labels = page.locator("table[data-heatmap] tbody th").all_inner_texts()
    assert labels == ["age", "country", "dataset (share drifted)"]
    assert page.locator('td[data-drift="none"]').count() == 0  # a run every 5 minutes

    finding = dashboard.seeded.drift_finding_id
    link = page.locator(f'table[data-heatmap] a[data-finding="{finding}"]').last
    cell = link.locator("xpath=..")
    assert cell.get_attribute("data-drift") == "alarm"
    assert cell.evaluate("td => getComputedStyle(td).backgroundColor") == ALARM_RGB
    assert f"finding {finding} (open)" in link.get_attribute("title")
    assert page.locator('tr:has(th:text-is("country")) td[data-drift="calm"]').count() == columns
    assert page.locator('tr:has(th:text-is("age")) td[data-drift="drift"]').count() >= 7
    assert page.locator("ul.heatmap-legend li").count() == 5
    screenshot(page, "model-drift-heatmap", 1280)

    link.click()
    page.wait_for_load_state("networkidle")
    assert page.url.endswith(f"/ui/findings/{finding}")
    assert page.frame_locator("iframe.report").locator("h1").inner_text() == "Data drift report"
    seen.assert_clean()


def test_the_page_range_drives_the_heatmap_and_matches_the_api(dashboard, new_page):
    page, seen = new_page()
    _open(page, dashboard.url + "/ui/models/fraud?range=15m")
    table = page.locator("table[data-heatmap]")
    assert int(table.get_attribute("data-columns")) == 15

    page.locator('nav.range a[data-range="7d"]').click()
    page.wait_for_load_state("networkidle")
    assert "range=7d" in page.url
    week = int(page.locator("table[data-heatmap]").get_attribute("data-columns"))
    assert week in (42, 43) and week <= HEATMAP_COLUMNS  # 4-hour columns, read from hour rows
    # The alarmed half hour sits in one 4-hour column, or in two when a column boundary
    # falls inside it (the columns end at the current hour): either way it is the finding.
    linked = page.locator("table[data-heatmap] a[data-finding]").evaluate_all(
        "links => links.map(a => Number(a.dataset.finding))"
    )
    assert 1 <= len(linked) <= 2 and set(linked) == {dashboard.seeded.drift_finding_id}

    api = httpx.get(
        dashboard.url + "/v1/models/fraud/drift",
        params={"start_s": 0, "end_s": 9_000_000_000, "limit": 1000},
    ).json()
    assert len(api["items"]) == dashboard.seeded.drift_cells == 3 * 72
    seen.assert_clean()


def test_a_model_without_drift_analysis_says_what_is_missing(dashboard, new_page):
    page, seen = new_page(390)
    _open(page, dashboard.url + "/ui/models/search?range=6h")

    empty = page.locator("[data-drift-empty]")
    assert "No reference pinned for search" in empty.inner_text()
    assert page.locator("table[data-heatmap]").count() == 0
    seen.assert_clean()


def test_on_a_narrow_screen_the_heatmap_opens_on_its_newest_windows(dashboard, new_page):
    page, seen = new_page(390)
    _open(page, dashboard.url + "/ui/models/fraud?range=6h")

    section = page.locator("section.drift")
    scroll = section.evaluate("s => [s.scrollLeft, s.clientWidth, s.scrollWidth]")
    left, shown, total = scroll
    assert total > shown, "at 390 px the heatmap is wider than its panel"
    assert left > 0 and left + shown >= total - 1
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    seen.assert_clean()
