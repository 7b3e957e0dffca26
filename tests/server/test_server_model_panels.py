"""The model page's version comparison, label and completeness panels on both back ends,
from events and labels stored by the ingest pipeline."""

from __future__ import annotations

import numpy as np
import pytest
from ingest_events import EventFactory

from inferloop.analyzer._performance import PerfOptions, quantile_shift_p_value
from inferloop.collector import IngestPipeline
from inferloop.collector.pipeline import InputMessage
from inferloop.server.routes_ui import templates
from inferloop.server.ui_model_panels import (
    DELAY_BUCKETS,
    completeness_view,
    label_delay_view,
    label_quality_view,
    model_panels,
)
from inferloop.server.ui_version_compare import _quantile_check, version_compare_view
from inferloop.server.ui_views import UiRange
from inferloop.store.completeness import completeness
from inferloop.store.label_panels import VersionRange
from inferloop.store.sketch import bucket_counts, bucket_value

SECOND_NS = 1_000_000_000
DELAYS_S = (0.5, 30, 120, 7200)


def _ingest(pipeline: IngestPipeline, factory: EventFactory, events: list[dict]) -> None:
    result = pipeline.ingest([InputMessage(factory.batch_bytes(events))], source="http")
    assert not result.rejections, result.rejections


@pytest.fixture
def stored(migrated_engine):
    """An hour of two versions, 20 calls a minute each (v2 1.5× slower); 40 labeled
    predictions of each (v1 right 9 in 10, v2 6 in 10) in the first 20 minutes, labeled
    after each of `DELAYS_S` in turn; one label with no prediction; three events lost and
    four SDK drops."""
    pipeline = IngestPipeline(migrated_engine)
    start_s = EventFactory().base_time_ns // SECOND_NS // 3600 * 3600 - 3 * 3600
    labeler = EventFactory(model="fraud")
    labels = []
    for version, slow, right in (("1", 1.0, 9), ("2", 1.5, 6)):
        factory = EventFactory(model="fraud", version=version)
        events = []
        for minute in range(60):
            for k in range(20):
                at = (start_s + minute * 60) * SECOND_NS + k * SECOND_NS
                event = factory.inference(
                    start_time_ns=at,
                    latency_ns=int(slow * (5_000_000 + (k * 7919 % 50) * 100_000)),
                    status="error" if k == 0 and minute % 2 else "ok",
                )
                if minute < 20 and k < 2:
                    n = len(labels)
                    event["prediction_id"] = f"v{version}-{n}"
                    event["outputs"] = {
                        "rows": [{"prediction": n % 2 if n % 10 < right else 1 - n % 2}]
                    }
                    delay = int(DELAYS_S[n % 4] * SECOND_NS)
                    labels.append(labeler.label(event["prediction_id"], n % 2, time_ns=at + delay))
                events.append(event)
        events[600]["dropped"] = {"queue_full": 3, "shutdown": 1}
        if version == "1":
            events[600:] = [dict(e, seq=e["seq"] + 3) for e in events[600:]]
        _ingest(pipeline, factory, events[:600])
        _ingest(pipeline, factory, events[600:])
    labels.append(labeler.label("nowhere", 1, time_ns=(start_s + 600) * SECOND_NS))
    _ingest(pipeline, labeler, labels)
    return migrated_engine, UiRange("1h", start_s, start_s + 3600, 60)


def test_a_slower_version_is_named_with_its_test_and_p_value(stored):
    engine, window = stored
    versions = [{"version": 1, "states": {"production": "live"}}, {"version": 2, "states": {}}]
    with engine.connect() as connection:
        view = version_compare_view(connection, "fraud", window, versions)

    assert [r["version"] for r in view["rows"]] == ["1", "2"]
    assert [r["count"] for r in view["rows"]] == [1200, 1200]
    assert view["rows"][0]["live"] and not view["rows"][1]["live"]
    assert view["rows"][0]["error_low"] < 30 / 1200 < view["rows"][0]["error_high"]
    (compared,) = view["comparisons"]
    assert (compared["candidate"], compared["baseline"], compared["outcome"]) == ("2", "1", "worse")
    assert compared["verdict"].startswith("v2 is slower: p95 +")
    assert "p < 0.001" in compared["verdict"]
    p95 = next(c for c in compared["checks"] if c["metric"] == "p95")
    assert p95["p_value"] < 0.001 and "median test" in p95["test"]
    errors = next(c for c in compared["checks"] if c["metric"] == "error rate")
    assert errors["p_value"] == 1.0 and not errors["significant"]  # 30 errors each


def test_a_live_version_is_compared_with_the_version_before_it(stored):
    engine, window = stored
    versions = [{"version": 1, "states": {}}, {"version": 2, "states": {"production": "live"}}]
    with engine.connect() as connection:
        view = version_compare_view(connection, "fraud", window, versions)
        alone = version_compare_view(
            connection, "fraud", UiRange("15m", window.end_s, window.end_s + 900, 60), versions
        )

    assert [(c["candidate"], c["baseline"]) for c in view["comparisons"]] == [("2", "1")]
    assert alone["rows"] == [] and "No calls of fraud in the last 15m" in alone["empty"]


def test_the_histogram_median_test_equals_the_analyzers_on_calls_at_bucket_values():
    rng = np.random.default_rng(3)
    values = np.round([bucket_value(i) for i in range(3200, 3300)])
    base = rng.choice(values[:80], 400)
    cur = rng.choice(values[10:], 300)
    ranges = [VersionRange(len(x), 0, bucket_counts(x)) for x in (base, cur)]
    for q in (0.5, 0.95):
        check = _quantile_check(*ranges, q, PerfOptions())
        up = quantile_shift_p_value(base, cur, q)
        down = quantile_shift_p_value(cur, base, q)
        assert check["p_value"] == pytest.approx(min(1.0, 2 * min(up, down)), rel=1e-9)


def test_label_quality_per_bucket_is_the_accuracy_of_the_labels_joined_there(stored):
    engine, window = stored
    with engine.connect() as connection:
        view = label_quality_view(connection, "fraud", window, ["1", "2"])
        quiet = label_quality_view(
            connection, "fraud", UiRange("15m", window.end_s, window.end_s + 900, 60), []
        )

    assert view["empty"] is None and view["metric"] == "accuracy"
    assert view["compared"] == 80
    by_version = {v["version"]: (v["labeled"], v["value"]) for v in view["versions"]}
    assert by_version == {"1": (40, 0.9), "2": (40, 0.6)}
    assert sum(p["count"] for p in view["points"]) == 80
    assert sum(b["count"] for b in view["bars"]) == 80
    assert all(0 <= p["value"] <= 1 for p in view["points"])
    assert "No labels arrived for the predictions of fraud" in quiet["empty"]


def test_label_delays_fall_into_their_buckets_and_sum_to_the_joined_labels(stored):
    engine, window = stored
    with engine.connect() as connection:
        view = label_delay_view(connection, "fraud", window)

    counts = {b["label"]: b["count"] for b in view["bars"]}
    assert [b["label"] for b in view["bars"]] == [name for name, _ in DELAY_BUCKETS]
    # Labels stamped within the hour: 0.5 s, 30 s, 2 min for the first 20 minutes' ones;
    # the 2 h ones fall past the range.
    assert counts == {
        "< 1 s": 20,
        "1–10 s": 0,
        "10 s–1 min": 20,
        "1–10 min": 20,
        "10 min–1 h": 0,
        "1–6 h": 0,
        "6–24 h": 0,
        "1–7 d": 0,
        "≥ 7 d": 0,
    }
    assert view["joined"] == 60 and view["waiting"] == 1


def test_label_delays_of_a_longer_range_count_hours(stored):
    engine, window = stored
    longer = UiRange("24h", window.start_s, window.start_s + 24 * 3600, 3600)
    with engine.connect() as connection:
        view = label_delay_view(connection, "fraud", longer)

    counts = {b["label"]: b["count"] for b in view["bars"]}
    assert counts["1–6 h"] == 20 and view["joined"] == 80


def test_completeness_equals_the_stores_with_drops_by_reason(stored):
    engine, window = stored
    with engine.connect() as connection:
        view = completeness_view(connection, "fraud", window)
        direct = completeness(
            connection,
            "fraud",
            start_ns=window.start_s * SECOND_NS,
            end_ns=window.end_s * SECOND_NS,
        )

    assert (view["emitted"], view["received"], view["lost"]) == (
        direct.emitted,
        direct.received,
        direct.lost,
    )
    assert view["lost"] == 3
    assert view["sdk_dropped"] == [("queue_full", 6), ("shutdown", 2)]
    assert view["sdk_dropped_total"] == 8


def test_every_panel_says_what_is_missing_for_a_model_with_nothing(migrated_engine):
    window = UiRange("6h", 0, 6 * 3600, 60)
    with migrated_engine.connect() as connection:
        views = (
            version_compare_view(connection, "ghost", window, []),
            label_quality_view(connection, "ghost", window, []),
            label_delay_view(connection, "ghost", window),
            completeness_view(connection, "ghost", window),
        )

    assert all("ghost" in view["empty"] and "6h" in view["empty"] for view in views)


def test_a_panel_whose_read_fails_says_so_in_its_place_and_the_others_render(stored):
    engine, window = stored
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE labels")
    with engine.connect() as connection:
        panels = model_panels(connection, "fraud", window, [])

    assert panels["version_compare"]["comparisons"][0]["outcome"] == "worse"
    for name in ("label_quality", "label_delay", "completeness"):
        assert "panel could not be read from the store" in panels[name]["error"]
    html = templates.env.get_template("_label_delay.html").render(window=window, **panels)
    assert "data-panel-error" in html and "The label delay panel could not be read" in html
