"""The dashboard's store queries on both back ends: the same figures as the API's rollup
reads (`latency_summary`, `minute_series`), from events stored by the ingest pipeline."""

from __future__ import annotations

import random

import orjson
import pytest
import sqlalchemy as sa
from drift_cell_rows import drift_cell, drift_finding
from ingest_events import MINUTE_NS, EventFactory

from inferloop.collector import IngestPipeline
from inferloop.collector.pipeline import InputMessage
from inferloop.store.dashboard_queries import (
    bucketed_series,
    call_buckets,
    model_known,
    model_totals,
    range_summary,
)
from inferloop.store.drift_cells import any_drift_cell, write_cells
from inferloop.store.drift_heatmap import drift_heatmap
from inferloop.store.label_panels import label_delays, labeled_predictions, version_ranges
from inferloop.store.rollups import latency_summary, minute_series
from inferloop.store.sketch import merge_into, percentiles, quantiles


@pytest.fixture
def stored(migrated_engine):
    """30 minutes of two versions of one model, with errors, through the ingest path."""
    pipeline = IngestPipeline(migrated_engine)
    # One start for both versions: two factories made on either side of a minute boundary
    # would otherwise put the versions a minute apart.
    first = EventFactory(model="fraud").base_time_ns // MINUTE_NS * 60 - 20 * 60
    for version, slow in (("1", 1), ("2", 3)):
        factory = EventFactory(model="fraud", version=version)
        events = [
            factory.inference(
                start_time_ns=(first + minute * 60) * 1_000_000_000 + k * 1_000_000,
                latency_ns=slow * (2_000_000 + (k * 7919 % 97) * 100_000),
                status="error" if k % 17 == 0 else "ok",
            )
            for minute in range(30)
            for k in range(25)
        ]
        result = pipeline.ingest([InputMessage(factory.batch_bytes(events))], source="http")
        assert result.stored == len(events)
    return migrated_engine, first


def test_minute_buckets_equal_the_api_minute_series(stored):
    engine, first = stored
    with engine.connect() as connection:
        total, versions = bucketed_series(
            connection, "fraud", start_s=first, end_s=first + 1800, step_s=60
        )
        api = minute_series(connection, "fraud", start_s=first, end_s=first + 1800)
        api_v2 = minute_series(connection, "fraud", start_s=first, end_s=first + 1800, version="2")

    assert total.t == [p.minute_start_s for p in api]
    assert total.count == [p.count for p in api] == [50] * 30
    assert total.errors == [p.errors for p in api]
    assert total.p95_ms == [round(p.p95_ns / 1e6, 3) for p in api]
    assert total.p99_ms == [round(p.p99_ns / 1e6, 3) for p in api]
    assert sorted(versions) == ["1", "2"]
    assert versions["2"].p50_ms == [round(p.p50_ns / 1e6, 3) for p in api_v2]


def test_wide_buckets_merge_histograms_and_keep_empty_buckets_as_gaps(stored):
    engine, first = stored
    with engine.connect() as connection:
        total, _ = bucketed_series(
            connection, "fraud", start_s=first - 600, end_s=first + 1800, step_s=600
        )
        whole = latency_summary(connection, "fraud", start_s=first, end_s=first + 600)

    assert total.count == [0, 500, 500, 500]
    assert total.p95_ms[0] is None
    assert total.p95_ms[1] == round(whole.quantiles_ns[0.95] / 1e6, 3)


def test_model_totals_and_call_buckets_agree_with_the_latency_summary(stored):
    engine, first = stored
    with engine.connect() as connection:
        (totals,) = model_totals(connection, start_s=first, end_s=first + 1800)
        summary = latency_summary(connection, "fraud", start_s=first, end_s=first + 1800)
        buckets = call_buckets(connection, start_s=first, end_s=first + 1800, step_s=900)
        known = model_known(connection, "fraud"), model_known(connection, "nope")

    assert (totals.count, totals.errors) == (summary.count, summary.errors) == (1500, 120)
    assert totals.p99_ns == summary.quantiles_ns[0.99]
    assert buckets == {"fraud": {first: 750, first + 900: 750}}
    assert known == (True, False)


def test_the_one_pass_quantiles_equal_the_sketch_quantiles():
    rng = random.Random(7)
    for _ in range(500):
        histogram = {
            str(rng.randint(-5, 400)): rng.randint(0, 9) for _ in range(rng.randint(0, 40))
        }
        assert list(percentiles(histogram)) == quantiles(histogram, (0.5, 0.95, 0.99))


def _plans(engine, run) -> list[str]:
    """The query plan of every statement `run(connection)` executes, on this back end."""
    captured: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):  # not the driver's own set-up
            captured.append((statement, parameters))

    with engine.connect() as connection:
        sa.event.listen(engine, "before_cursor_execute", capture)
        try:
            run(connection)
        finally:
            sa.event.remove(engine, "before_cursor_execute", capture)
        plans = []
        sqlite = engine.dialect.name == "sqlite"
        if not sqlite:  # tiny tables: without this PostgreSQL rightly prefers a scan
            connection.exec_driver_sql("SET enable_seqscan = off")
        for statement, parameters in captured:
            explain = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
            rows = connection.exec_driver_sql(explain + statement, parameters).all()
            plans.append("\n".join(str(row[-1]) for row in rows))
    return plans


def test_every_dashboard_query_reads_through_an_index(stored):
    engine, first = stored
    span = {"start_s": first, "end_s": first + 1800}

    def run(connection) -> None:
        model_totals(connection, **span)
        model_totals(connection, model="fraud", **span)
        call_buckets(connection, step_s=600, **span)
        bucketed_series(connection, "fraud", step_s=600, **span)
        model_known(connection, "fraud")

    plans = _plans(engine, run)

    assert len(plans) == 5
    for plan in plans:
        if engine.dialect.name == "sqlite":
            assert "USING" in plan and "INDEX" in plan or "PRIMARY KEY" in plan, plan
        else:
            assert "Index" in plan and "Seq Scan" not in plan, plan


@pytest.fixture
def hours_stored(migrated_engine):
    """Five hours of one model, 3 calls a minute, through the ingest path."""
    pipeline = IngestPipeline(migrated_engine)
    factory = EventFactory(model="fraud", version="1")
    start = factory.base_time_ns // (3600 * 1_000_000_000) * 3600 - 5 * 3600
    events = [
        factory.inference(
            start_time_ns=(start + minute * 60 + k) * 1_000_000_000,
            latency_ns=1_000_000 * (1 + (minute * 3 + k) % 50),
        )
        for minute in range(5 * 60)
        for k in range(3)
    ]
    pipeline.ingest([InputMessage(factory.batch_bytes(events))], source="http")
    return migrated_engine, pipeline, factory, start


def _merged_minutes(engine, start_s: int, end_s: int, step_s: int) -> dict:
    """The old way, as a reference: every minute's histogram merged per bucket."""
    with engine.connect() as connection:
        rows = minute_series(connection, "fraud", start_s=start_s, end_s=end_s)
        merged: dict[int, list] = {}
        for row in connection.execute(
            sa.text(
                "SELECT minute_start_s, count, histogram FROM minute_rollups"
                " WHERE model = 'fraud' AND minute_start_s >= :a AND minute_start_s < :b"
            ),
            {"a": start_s, "b": end_s},
        ):
            histogram = (
                row.histogram if isinstance(row.histogram, dict) else orjson.loads(row.histogram)
            )
            entry = merged.setdefault((row.minute_start_s - start_s) // step_s, [0, {}])
            entry[0] += row.count
            merge_into(entry[1], histogram)
    assert rows
    return merged


def test_hour_buckets_read_hour_rows_equal_to_their_merged_minutes(hours_stored):
    engine, pipeline, factory, start = hours_stored
    span = {"start_s": start, "end_s": start + 5 * 3600}
    reference = _merged_minutes(engine, step_s=3600, **span)
    with engine.connect() as connection:
        total, versions = bucketed_series(connection, "fraud", step_s=3600, **span)
    assert total.count == [reference[i][0] for i in range(5)] == [180] * 5
    assert total.p99_ms == [round(percentiles(reference[i][1])[2] / 1e6, 3) for i in range(5)]
    assert versions["1"] == total

    late = [
        factory.inference(start_time_ns=(start + 90 + k) * 1_000_000_000, latency_ns=10**9)
        for k in range(20)
    ]
    pipeline.ingest([InputMessage(factory.batch_bytes(late))], source="http")
    with engine.connect() as connection:
        again, _ = bucketed_series(connection, "fraud", step_s=3600, **span)
    assert again.count == [200, 180, 180, 180, 180]
    assert again.p99_ms[0] > total.p99_ms[0]
    assert again.p99_ms[1:] == total.p99_ms[1:]


def test_ranges_read_whole_hours_from_hour_rows_and_edges_from_minutes(hours_stored):
    engine, _, _, start = hours_stored
    span = {"start_s": start + 600, "end_s": start + 5 * 3600 - 600}
    with engine.connect() as connection:
        (totals,) = model_totals(connection, **span)
        summary = range_summary(connection, "fraud", **span)
        old = latency_summary(connection, "fraud", **span)
    assert totals.count == summary.count == old.count == 3 * (5 * 60 - 20)
    assert (summary.p50_ns, summary.p95_ns, summary.p99_ns) == tuple(old.quantiles_ns.values())
    assert totals.p95_ns == old.quantiles_ns[0.95]
    assert summary.mean_ns == old.mean_ns and summary.max_ns == old.max_ns


def test_the_hour_queries_read_through_an_index(hours_stored):
    engine, _, _, start = hours_stored
    span = {"start_s": start + 600, "end_s": start + 5 * 3600 - 600}

    def run(connection) -> None:
        model_totals(connection, **span)  # hour rows of every model, and the edges
        range_summary(connection, "fraud", **span)
        range_summary(connection, "fraud", version="1", **span)
        bucketed_series(connection, "fraud", step_s=3600, start_s=start, end_s=start + 5 * 3600)

    plans = _plans(engine, run)

    assert len(plans) == 8
    assert sum("hour_rollups" in plan or "HOUR_ROLLUPS" in plan.upper() for plan in plans) == 4
    for plan in plans:
        if engine.dialect.name == "sqlite":
            assert "USING" in plan and "INDEX" in plan or "PRIMARY KEY" in plan, plan
        else:
            assert "Index" in plan and "Seq Scan" not in plan, plan


def test_the_drift_heatmap_reads_through_the_drift_tables_keys(migrated_engine):
    minute, hour = 60 * 1_000_000_000, 3600 * 1_000_000_000
    with migrated_engine.begin() as connection:
        finding = drift_finding(connection)
        cells = [
            drift_cell(m * 5 * minute, feature, model=model)
            for model in ("fraud", "other")
            for m in range(1, 30)
            for feature in ("age", "income")
        ]
        cells.append(drift_cell(50 * minute, "age", alarmed=True, finding_id=finding))
        write_cells(connection, cells)

    def run(connection) -> None:
        for start_ns, bucket_ns in ((minute, 10 * minute), (0, hour)):  # cells, then hours
            drift_heatmap(
                connection, "fraud", start_ns=start_ns, end_ns=3 * hour, bucket_ns=bucket_ns
            )
        any_drift_cell(connection, "fraud")

    plans = _plans(migrated_engine, run)

    assert len(plans) == 7  # each heatmap: counts, latest cells, findings
    tables = ["drift_cells", "drift_cells", "findings", "drift_cell_hours", "drift_cells"]
    tables += ["findings", "drift_cells"]
    for plan, table in zip(plans, tables, strict=True):
        if migrated_engine.dialect.name == "sqlite":
            assert f"SCAN {table}" not in plan, plan
            index = "PRIMARY KEY" if table == "findings" else f"sqlite_autoindex_{table}_1"
            assert index in plan, plan
        else:
            assert f"pk_{table}" in plan and "Seq Scan" not in plan, plan


def test_the_model_panels_queries_read_through_an_index(stored):
    """Version figures from the rollups' keys, labels by (model, time), predictions by
    (model, version, start) and each label's prediction by its id: no table scanned."""
    engine, first = stored
    start_ns, end_ns = first * 1_000_000_000, (first + 1800) * 1_000_000_000

    def run(connection) -> None:
        version_ranges(connection, "fraud", start_s=first, end_s=first + 1800)
        label_delays(connection, "fraud", start_ns=start_ns, end_ns=end_ns, edges_ns=[10**9])
        labeled_predictions(
            connection, "fraud", versions=["1", "2"], start_ns=start_ns, end_ns=end_ns, limit=10
        )

    plans = _plans(engine, run)

    assert len(plans) == 3
    for plan in plans:
        if engine.dialect.name == "sqlite":
            scans = [line for line in plan.splitlines() if line.startswith(("SCAN", "SEARCH"))]
            assert scans, plan
            for line in scans:
                table = line.split()[1]
                assert table == "delays" or "INDEX" in line or "PRIMARY KEY" in line, plan
        else:
            assert "Index" in plan and "Seq Scan" not in plan, plan
