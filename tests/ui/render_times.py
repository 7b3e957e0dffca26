"""Server render time of every dashboard page: p50/p95 over N loads on a seeded store.

    .venv/bin/python tests/ui/render_times.py [--loads 20] [--every-minute]

`--every-minute` seeds calls in every minute of the week (about 10,000 minute rollups per
model and version); without it, the tests' store. Prints one JSON line per page, measured
with httpx against the live server on loopback (the time to the whole response body).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]


def main() -> None:
    import httpx
    import sqlalchemy as sa
    from serving import served
    from ui_seed import seed

    from inferloop.server import create_app
    from inferloop.settings import Settings
    from inferloop.store import create_engine_for, upgrade

    parser = argparse.ArgumentParser()
    parser.add_argument("--loads", type=int, default=20)
    parser.add_argument("--every-minute", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="inferloop-render-"))
    url = f"sqlite:///{folder / 'inferloop.db'}"
    upgrade(url)
    engine = create_engine_for(url)
    dense = {"week_every_min": 1, "week_per_minute": 10} if args.every_minute else {}
    started = time.perf_counter()
    seeded = seed(engine, now_s=time.time(), report_dir=folder, **dense)
    with engine.connect() as connection:
        rollups = connection.scalar(sa.text("SELECT count(*) FROM minute_rollups"))
    print(
        json.dumps(
            {
                "seeded_events": seeded.events,
                "minute_rollups": rollups,
                "seed_s": round(time.perf_counter() - started, 1),
            }
        )
    )
    pages = [f"/ui/?range={r}" for r in ("1h", "24h", "7d")]
    pages += [f"/ui/models/fraud?range={r}" for r in ("1h", "24h", "7d")]
    pages += [f"/ui/data/models/fraud/series?range={r}" for r in ("1h", "6h", "24h", "7d")]
    pages += [
        "/ui/findings",
        f"/ui/findings/{seeded.drift_finding_id}",
        "/ui/alerts",
        "/ui/feedback/fraud",
        "/ui/feedback/ranker",
    ]
    app = create_app(Settings(database_url=url), engine=engine)
    with served(app) as base, httpx.Client(base_url=base) as client:
        for path in pages:
            client.get(path).raise_for_status()  # warm
            times = []
            for _ in range(args.loads):
                t = time.perf_counter()
                client.get(path).raise_for_status()
                times.append((time.perf_counter() - t) * 1000)
            times.sort()
            p95 = times[max(0, round(0.95 * len(times)) - 1)]
            record = {
                "page": path,
                "loads": len(times),
                "p50_ms": round(statistics.median(times), 1),
            }
            print(json.dumps(record | {"p95_ms": round(p95, 1)}))
    engine.dispose()


if __name__ == "__main__":
    main()
