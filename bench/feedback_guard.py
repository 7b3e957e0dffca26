"""False rollbacks and power of the guarded rollout, by simulation (calibration check).

A/A rollouts (candidate identical to live) checked after every interval: the guard's
false-rollback rate over the looks must stay ≤ α = 0.05 (Clopper–Pearson 95% interval),
while a fixed-α two-sided z-test re-run on the same growing windows inflates (about 14%
after 5 looks and 25% after 20). Power: a candidate with +20% p95 latency (lognormal,
log-sd 0.5: 5% → 10% of calls above live's p95), +2 points error rate (2% → 4%) or
−3 points accuracy (90% → 87%): the share rolled back before being promoted, and the
look at which (median, p90). Traffic: 500 calls per arm per interval, 30% labeled.

    .venv/bin/python bench/feedback_guard.py [--rollouts 10000] [--looks 20]

Last line: one JSON object of figures.
"""

from __future__ import annotations

import argparse
import json
import time

from inferloop.feedback._guard_calibration import Arm, calibration, power, slow_rate_after_shift

CALLS = 500
LABEL_COVERAGE = 0.3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=10_000, help="A/A rollouts")
    parser.add_argument("--looks", type=int, default=20, help="checks per A/A rollout")
    parser.add_argument("--power-rollouts", type=int, default=2_000)
    parser.add_argument("--power-looks", type=int, default=60, help="horizon of a regression")
    parser.add_argument("--seed", type=int, default=20240610)
    args = parser.parse_args()
    started = time.perf_counter()
    traffic = {"calls": CALLS, "label_coverage": LABEL_COVERAGE}
    figures: dict[str, object] = {
        "bench": "feedback_guard",
        "alpha": 0.05,
        "calls_per_arm_per_look": CALLS,
        "label_coverage": LABEL_COVERAGE,
        "aa_rollouts": args.rollouts,
        "aa_looks": args.looks,
        "aa": calibration(args.rollouts, args.looks, seed=args.seed, **traffic),
    }
    scenarios = {
        "p95_latency_plus_20pct": Arm(slow_rate=slow_rate_after_shift(0.20)),
        "error_rate_plus_2pts": Arm(error_rate=0.04),
        "accuracy_minus_3pts": Arm(accuracy=0.87),
    }
    figures["power_rollouts"] = args.power_rollouts
    figures["power_horizon_looks"] = args.power_looks
    figures["power"] = {
        name: power(arm, args.power_rollouts, args.power_looks, seed=args.seed + i, **traffic)
        for i, (name, arm) in enumerate(scenarios.items(), start=1)
    }
    figures["seconds"] = round(time.perf_counter() - started, 2)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
