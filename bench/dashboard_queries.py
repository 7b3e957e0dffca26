"""Model-detail queries over a week of events: p50/p95 per range, against merging minutes.

Seeds ``--events`` (default 10 million) inference events over ``--days`` (7) for
``--models`` models of ``--versions`` versions each into a fresh store, through the real
ingest path (``IngestPipeline.ingest``: validation, idempotent insert, minute and hour
rollups in one transaction per batch), with lognormal latencies, a slow tail, errors and
GPU time on half the models. Then asks the FastAPI app, in process (Starlette's
TestClient), what the model page and the model API ask, at 1-hour, 1-day and 7-day
ranges (the API's ending where the seeded week ends, the pages' now): ``/v1/models/{m}/latency``, ``/v1/models/{m}/series`` (default step),
``/ui/models/{m}?range=…`` and ``/ui/data/models/{m}/series?range=…``.

Baseline, in the same process on the same store: the API's two figures computed the old
way, every minute's histogram of the range decoded and merged (``latency_summary`` and a
per-bucket merge of minute histograms); the new way timed the same way (direct calls)
gives the speedup.

usage: python bench/dashboard_queries.py [--events 10000000] [--database-url URL]
SQLite (a temporary file) unless ``--database-url`` names a PostgreSQL server, where a
throwaway database is made and dropped. Last line of output: one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import orjson
import sqlalchemy as sa

from inferloop.collector import IngestPipeline
from inferloop.collector.pipeline import InputMessage
from inferloop.settings import Settings
from inferloop.store import create_engine_for, upgrade
from inferloop.store.dashboard_queries import bucketed_series, range_summary
from inferloop.store.rollups import latency_summary
from inferloop.store.sketch import merge_into, quantiles
from inferloop.store.tables import MinuteRollup

RANGES = {"1h": 3600, "1d": 86_400, "7d": 7 * 86_400}
UI_RANGE = {"1h": "1h", "1d": "24h", "7d": "7d"}
_MEDIAN_MS = (8.0, 20.0, 3.0, 45.0, 12.0, 6.0, 30.0, 15.0)
_NS = 1_000_000_000


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def seed(engine, *, events: int, models: int, versions: int, days: float, batch: int) -> dict:
    """Store `events` calls spread evenly over the `days` before now, `batch` per ingest
    call; returns the rate."""
    rng = np.random.default_rng(11)
    pipeline = IngestPipeline(engine)
    end_ns = time.time_ns() // (60 * _NS) * 60 * _NS
    span_ns = int(days * 86_400 * _NS)
    start_ns = end_ns - span_ns
    weights = np.array([0.4, 0.3, 0.2, 0.1, 0.15, 0.1, 0.05, 0.05][:models])
    weights = weights / weights.sum()
    emitters = {(m, v): uuid.uuid4().hex for m in range(models) for v in range(versions)}
    seqs = dict.fromkeys(emitters, 0)
    started = time.perf_counter()
    stored = 0
    report_every = max(batch, events // 20)
    for first in range(0, events, batch):
        n = min(batch, events - first)
        index = np.arange(first, first + n)
        times = start_ns + index * (span_ns // events) + rng.integers(0, span_ns // events, n)
        model = rng.choice(models, n, p=weights)
        version = (rng.random(n) < 0.35).astype(np.int64) % versions
        median = np.array(_MEDIAN_MS[:models])[model] * np.where(version == 1, 0.9, 1.0)
        latency = median * 1e6 * np.exp(rng.normal(0.0, 0.35, n))
        latency = np.where(rng.random(n) < 0.01, latency * 5, latency).astype(np.int64)
        failed = rng.random(n) < np.where(model == 2, 0.02, 0.005)
        device = (latency * rng.uniform(0.5, 0.8, n)).astype(np.int64)
        batches: dict[str, list[dict]] = {}  # one per emitter (model version), as the SDK sends
        for t, m, v, lat, err, dev in zip(
            times.tolist(),
            model.tolist(),
            version.tolist(),
            latency.tolist(),
            failed.tolist(),
            device.tolist(),
            strict=True,
        ):
            emitter = emitters[(m, v)]
            seq = seqs[(m, v)]
            seqs[(m, v)] = seq + 1
            batches.setdefault(emitter, []).append(
                {
                    "schema_version": 1,
                    "kind": "inference",
                    "event_id": f"{t // 1_000_000:012x}{uuid.uuid4().hex[12:]}",
                    "emitter_id": emitter,
                    "seq": seq,
                    "model": f"model-{m}",
                    "version": str(v + 1),
                    "environment": "bench",
                    "start_time_ns": t,
                    "latency_ns": lat,
                    "device_time_ns": dev if m % 2 == 0 else None,
                    "status": "error" if err else "ok",
                    "error_type": "ValueError" if err else None,
                    "error_message": "bad input" if err else None,
                    "batch_size": 1,
                    "device": "cuda:0" if m % 2 == 0 else "cpu",
                    "inputs": {"rows": [{"amount": round(lat % 1000 / 10, 1)}]},
                    "outputs": {"rows": [{"score": 0.5}]},
                    "prediction_id": f"{emitter[:12]}-{seq:x}",
                    "tags": {"region": "eu"},
                }
            )
        messages = [
            InputMessage(orjson.dumps({"schema_version": 1, "emitter_id": e, "events": events}))
            for e, events in batches.items()
        ]
        result = pipeline.ingest(messages, source="http")
        stored += result.stored
        if (first + n) % report_every < batch or first + n == events:
            elapsed = time.perf_counter() - started
            print(
                f"seeded {first + n:,}/{events:,} events in {elapsed:.0f} s "
                f"({(first + n) / elapsed:,.0f} events/s)",
                flush=True,
            )
    if stored != events:
        raise SystemExit(f"stored {stored} of {events} events")
    elapsed = time.perf_counter() - started
    return {"seed_s": round(elapsed, 1), "seed_events_per_s": round(events / elapsed)}


def _seeded_end_s(engine) -> int:
    """The end of the last seeded minute: where the API's ranges end (the pages' end now)."""
    with engine.connect() as connection:
        return (
            int(connection.scalar(sa.text("SELECT max(minute_start_s) FROM minute_rollups"))) + 60
        )


def old_series(connection, model: str, *, start_s: int, end_s: int, step_s: int) -> list:
    """The series the old way: each bucket's minute histograms decoded and merged."""
    table = MinuteRollup.__table__
    rows = connection.execute(
        sa.select(
            table.c.minute_start_s,
            table.c.count,
            sa.type_coerce(table.c.histogram, sa.Text).label("histogram"),
        ).where(
            table.c.model == model,
            table.c.minute_start_s >= start_s,
            table.c.minute_start_s < end_s,
        )
    )
    merged: dict[int, list] = {}
    for row in rows:
        histogram = row.histogram
        if isinstance(histogram, str | bytes):
            histogram = orjson.loads(histogram)
        entry = merged.setdefault((row.minute_start_s - start_s) // step_s, [0, {}])
        entry[0] += row.count
        merge_into(entry[1], histogram)
    return [
        (index, count, quantiles(histogram, (0.5, 0.95, 0.99)))
        for index, (count, histogram) in sorted(merged.items())
    ]


def _timed(call: Callable[[], object], *, warmup: int, requests: int) -> dict[str, float]:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(requests):
        t = time.perf_counter()
        call()
        times.append((time.perf_counter() - t) * 1000)
    return {
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(_percentile(times, 0.95), 2),
    }


def _new_way(connection, model: str, start: int, end: int, step: int) -> None:
    range_summary(connection, model, start_s=start, end_s=end)
    bucketed_series(connection, model, start_s=start // step * step, end_s=end, step_s=step)


def _old_way(connection, model: str, start: int, end: int, step: int) -> None:
    latency_summary(connection, model, start_s=start, end_s=end)
    old_series(connection, model, start_s=start // step * step, end_s=end, step_s=step)


def measure(
    engine, url: str, *, end_s: int, models: int, requests: int, warmup: int, baseline: int
) -> dict:
    from fastapi.testclient import TestClient

    from inferloop.server import create_app

    names = [f"model-{m}" for m in range(models)]
    turn = itertools.count()
    app = create_app(Settings(database_url=url), engine=engine)
    figures: dict[str, dict] = {}
    now_s = end_s
    with TestClient(app) as client:

        def get(path: str, params: dict) -> None:
            model = names[next(turn) % len(names)]
            client.get(path.format(model=model), params=params).raise_for_status()

        for label, length in RANGES.items():
            span = {"start_s": now_s - length, "end_s": now_s}
            ui = {"range": UI_RANGE[label]}
            queries = {
                "api_latency": ("/v1/models/{model}/latency", span),
                "api_series": ("/v1/models/{model}/series", span),
                "ui_model_page": ("/ui/models/{model}", ui),
                "ui_series": ("/ui/data/models/{model}/series", ui),
            }
            figures[label] = {
                name: _timed(partial(get, path, params), warmup=warmup, requests=requests)
                for name, (path, params) in queries.items()
            }
            step = 60 if length <= 6 * 3600 else 3600  # the series route's default
            for name, way, count in (
                ("new_direct", _new_way, requests),
                ("old_direct", _old_way, baseline),
            ):
                with engine.connect() as connection:

                    def call(way=way, connection=connection, start=now_s - length, step=step):
                        way(connection, names[next(turn) % len(names)], start, now_s, step)

                    figures[label][name] = _timed(call, warmup=min(warmup, 2), requests=count)
            old, new = figures[label]["old_direct"], figures[label]["new_direct"]
            figures[label]["speedup_p50"] = round(old["p50_ms"] / new["p50_ms"], 1)
            figures[label]["speedup_p95"] = round(old["p95_ms"] / new["p95_ms"], 1)
            print(f"{label}: {json.dumps(figures[label])}", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--models", type=int, default=4)
    parser.add_argument("--versions", type=int, default=2)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--batch", type=int, default=20_000, help="events per ingest call")
    parser.add_argument("--requests", type=int, default=50, help="timed requests per query")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument(
        "--baseline-requests", type=int, default=10, help="timed old-way calls per range"
    )
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server (e.g. from `deploy/services.sh env`); default: SQLite",
    )
    parser.add_argument(
        "--sqlite-path",
        type=Path,
        help="keep the SQLite store here; with --skip-seed, measure one seeded before",
    )
    parser.add_argument("--skip-seed", action="store_true")
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="inferloop-bench-dash-")
    admin = database = None
    if args.database_url:
        admin_url = sa.engine.make_url(args.database_url)
        database = f"bench_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{database}"'))
        url = admin_url.set(database=database).render_as_string(False)
        backend = "postgresql"
    else:
        path = args.sqlite_path or Path(tmp.name) / "bench.db"
        url = f"sqlite:///{path}"
        backend = "sqlite"
    figures: dict[str, object] = {
        "backend": backend,
        "events": args.events,
        "models": args.models,
        "versions": args.versions,
        "days": args.days,
    }
    try:
        upgrade(url)
        engine = create_engine_for(url)
        if not args.skip_seed:
            figures |= seed(
                engine,
                events=args.events,
                models=args.models,
                versions=args.versions,
                days=args.days,
                batch=args.batch,
            )
        with engine.connect() as connection:
            for table in ("events", "minute_rollups", "hour_rollups"):
                figures[f"{table}_rows"] = connection.scalar(
                    sa.text(f"SELECT count(*) FROM {table}")
                )
        print(json.dumps(figures), flush=True)
        load_before = os.getloadavg()[0]
        figures["ranges"] = measure(
            engine,
            url,
            end_s=_seeded_end_s(engine),
            models=args.models,
            requests=args.requests,
            warmup=args.warmup,
            baseline=args.baseline_requests,
        )
        worst = max(
            entry["p95_ms"]
            for by_range in figures["ranges"].values()
            for name, entry in by_range.items()
            if isinstance(entry, dict) and not name.endswith("_direct")
        )
        figures["worst_p95_ms"] = worst
        # Other work on the machine slows both ways alike; the load says how much there was.
        figures["load_average_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        figures["target_p95_ms"] = 100
        engine.dispose()
    finally:
        tmp.cleanup()
        if admin is not None:
            with admin.connect() as connection:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            admin.dispose()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
