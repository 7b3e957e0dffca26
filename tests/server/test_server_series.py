"""`/v1/models/{model}/series` and `/latency` read the rollup grains: percentiles and GPU
time per bucket at minute or hour steps, bounded and declared in the OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from ingest_events import EventFactory
from serving import served

from inferloop.server import create_app
from inferloop.settings import Settings
from inferloop.store import create_engine_for, upgrade
from inferloop.store.rollups import latency_summary

HOUR_S = 3600


@pytest.fixture
def seeded(database_url: str) -> Iterator[tuple[str, int, str]]:
    """Three hours of `vision` (GPU time on every other call, two versions), served."""
    upgrade(database_url)
    start = EventFactory().base_time_ns // (HOUR_S * 1_000_000_000) * HOUR_S - 3 * HOUR_S
    app = create_app(Settings(database_url=database_url))
    with served(app) as base:
        for version in ("1", "2"):
            factory = EventFactory(model="vision", version=version)
            events = [
                factory.inference(
                    start_time_ns=(start + minute * 60 + k) * 1_000_000_000,
                    latency_ns=(2 if version == "2" else 1) * (3_000_000 + k * 100_000),
                    device_time_ns=1_000_000 + k * 10_000 if k % 2 == 0 else None,
                    status="error" if k == 9 else "ok",
                )
                for minute in range(3 * 60)
                for k in range(10)
            ]
            httpx.post(f"{base}/v1/events", content=factory.batch_bytes(events)).raise_for_status()
        yield base, start, database_url


def test_hour_buckets_carry_percentiles_and_gpu_time(seeded):
    base, start, url = seeded
    params = {"start_s": start, "end_s": start + 3 * HOUR_S, "step_s": HOUR_S}
    points = httpx.get(f"{base}/v1/models/vision/series", params=params).json()

    assert [p["start_s"] for p in points] == [start, start + HOUR_S, start + 2 * HOUR_S]
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            first = latency_summary(connection, "vision", start_s=start, end_s=start + HOUR_S)
    finally:
        engine.dispose()
    hour = points[0]
    assert (hour["step_s"], hour["count"], hour["errors"]) == (HOUR_S, 1200, 120)
    assert hour["throughput_per_s"] == pytest.approx(1200 / HOUR_S)
    assert hour["p95_ms"] == round(first.quantiles_ns[0.95] / 1e6, 3)
    assert hour["p99_ms"] == round(first.quantiles_ns[0.99] / 1e6, 3)
    assert hour["gpu_count"] == 600
    assert hour["gpu_mean_ms"] == pytest.approx(1.04)  # k = 0, 2, 4, 6, 8
    assert hour["gpu_max_ms"] == pytest.approx(1.08)


def test_minute_buckets_by_default_for_short_ranges_and_one_version(seeded):
    base, start, _ = seeded
    params = {"start_s": start, "end_s": start + 600, "version": "2"}
    points = httpx.get(f"{base}/v1/models/vision/series", params=params).json()
    assert len(points) == 10 and {p["step_s"] for p in points} == {60}
    assert {p["count"] for p in points} == {10}
    assert points[0]["p50_ms"] == pytest.approx(2 * 3.4, rel=0.01)
    assert {p["gpu_count"] for p in points} == {5}

    latency = httpx.get(f"{base}/v1/models/vision/latency", params=params).json()
    assert (latency["count"], latency["gpu_count"]) == (100, 50)
    assert latency["gpu_mean_ms"] == pytest.approx(1.04)
    assert latency["gpu_max_ms"] == pytest.approx(1.08)


def test_a_long_range_defaults_to_hour_buckets_starting_on_the_hour(seeded):
    base, start, _ = seeded
    params = {"start_s": start - 4 * HOUR_S + 1800, "end_s": start + 3 * HOUR_S}  # 6.5 h
    points = httpx.get(f"{base}/v1/models/vision/series", params=params).json()
    assert [p["start_s"] for p in points] == [start, start + HOUR_S, start + 2 * HOUR_S]
    assert [p["count"] for p in points] == [1200] * 3


@pytest.mark.parametrize(
    ("step_s", "span_s"), [(30, 3600), (90, 3600), (60, 2 * 86_400), (10**9, 3600)]
)
def test_a_step_off_the_minute_or_too_many_buckets_is_a_422(seeded, step_s, span_s):
    base, start, _ = seeded
    params = {"start_s": start, "end_s": start + span_s, "step_s": step_s}
    response = httpx.get(f"{base}/v1/models/vision/series", params=params)
    assert response.status_code == 422
    assert "step_s" in response.text


def test_the_openapi_document_declares_the_step_and_the_gpu_figures(seeded):
    base, _, _ = seeded
    document = httpx.get(f"{base}/openapi.json").json()
    series = document["paths"]["/v1/models/{model}/series"]["get"]
    step = next(p for p in series["parameters"] if p["name"] == "step_s")
    assert step["schema"]["anyOf"][0]["minimum"] == 60
    assert "422" in series["responses"]
    point = document["components"]["schemas"]["SeriesPointResponse"]["properties"]
    assert {"gpu_count", "gpu_mean_ms", "gpu_max_ms", "p95_ms", "step_s"} <= set(point)
    latency = document["components"]["schemas"]["LatencyResponse"]["properties"]
    assert {"gpu_count", "gpu_mean_ms", "gpu_max_ms"} <= set(latency)


def test_the_model_page_has_a_gpu_time_panel_fed_by_its_series_data(seeded):
    base, _, _ = seeded
    page = httpx.get(f"{base}/ui/models/vision?range=6h")
    data = httpx.get(f"{base}/ui/data/models/vision/series?range=6h").json()
    assert page.status_code == 200
    charts = page.text[page.text.index('<div class="charts"') :]
    assert charts.startswith(
        '<div class="charts" data-series="/ui/data/models/vision/series?range=6h"'
    )
    assert 'data-chart="gpu"' in charts  # drawn from the data the other charts read
    total = data["total"]
    assert len(total["gpu_mean"]) == len(total["gpu_max"]) == len(total["t"]) == 360
    assert sum(total["gpu_count"]) == 2 * 3 * 60 * 5
    assert max(v for v in total["gpu_max"] if v is not None) == pytest.approx(1.08)
    assert set(data["versions"]) == {"1", "2"}
