"""The model page's version comparison: each version with calls in the range against the
live one (the live one against the version before it), latency and error rate.

No statistics of its own: versions are compared with the analyzer's exact hypergeometric
tests (`hypergeom_upper`, as `compare_latency` and `compare_error_rate` use it) and its
thresholds (`PerfOptions`: α, the 20 % / 1 ms latency change and the 1-point error-rate
change that matter), and error rates carry the guard's Clopper–Pearson interval. Two
differences from the analyzer, both because the page reads the rollups rather than raw
calls: latency is counted from each version's merged histogram, so the median test's
threshold is the upper edge of the pooled quantile's bucket (within the sketch's 0.5 %)
and the counts above it are exact; and the page asks "different?", so each test is
two-sided (twice the smaller one-sided p-value).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa

from inferloop.analyzer import PerfOptions
from inferloop.analyzer._performance import hypergeom_upper
from inferloop.feedback._guard_calibration import binomial_interval
from inferloop.store.label_panels import VersionRange, version_ranges
from inferloop.store.sketch import bucket_indexes, quantiles

__all__ = ["version_compare_view", "version_key"]


def version_key(version: str) -> tuple[int, int, str]:
    """Sort key: numbered versions ("2", "v10") in number order, then the others by name."""
    bare = version.removeprefix("v")
    return (0, int(bare), "") if bare.isdigit() else (1, 0, version)


def _live(versions: Sequence[Mapping[str, Any]]) -> set[str]:
    return {str(v["version"]) for v in versions if "live" in v.get("states", {}).values()}


def _pairs(served: list[str], live: set[str]) -> list[tuple[str, str]]:
    """(candidate, baseline): each version against a live one, a live one against the
    version before it; each pair once, the newer version as the candidate."""
    found: list[tuple[str, str]] = []
    live_served = [v for v in served if v in live]
    for index, version in enumerate(served):
        others = [v for v in live_served if v != version]
        if others:
            baseline = others[-1]
        elif index:
            baseline = served[index - 1]
        else:
            continue
        pair = tuple(sorted((version, baseline), key=version_key, reverse=True))
        if pair not in found:
            found.append(pair)
    return found


def _p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _two_sided(above_cur: int, above_base: int, n_base: int, n_cur: int) -> float:
    """Twice the smaller of the two one-sided hypergeometric tail probabilities."""
    total = above_cur + above_base
    up = hypergeom_upper(above_cur, total, n_base, n_cur)
    down = hypergeom_upper(above_base, total, n_cur, n_base)
    return min(1.0, 2 * min(up, down))


def _quantile_check(
    base: VersionRange, cur: VersionRange, q: float, options: PerfOptions
) -> dict[str, Any]:
    """The analyzer's generalised median test, counted from two histograms."""
    pooled = dict(base.histogram)
    for key, count in cur.histogram.items():
        pooled[key] = pooled.get(key, 0) + count
    (pooled_q,) = quantiles(pooled, [q])
    edge = int(bucket_indexes(np.array([pooled_q]))[0])
    above_base = sum(c for k, c in base.histogram.items() if int(k) > edge)
    above_cur = sum(c for k, c in cur.histogram.items() if int(k) > edge)
    p_value = _two_sided(above_cur, above_base, base.count, cur.count)
    (base_q,) = quantiles(base.histogram, [q])
    (cur_q,) = quantiles(cur.histogram, [q])
    base_ms, cur_ms = base_q / 1e6, cur_q / 1e6
    change = cur_ms / base_ms - 1 if base_ms > 0 else math.inf
    material = abs(change) >= options.min_latency_increase and (
        abs(cur_ms - base_ms) >= options.min_latency_increase_ms
    )
    name = f"p{round(q * 100)}"
    return {
        "metric": name,
        "baseline": f"{base_ms:,.1f} ms",
        "current": f"{cur_ms:,.1f} ms",
        "difference": f"{cur_ms - base_ms:+,.1f} ms ({change:+.0%})",
        "effect": f"{name} {cur_ms - base_ms:+,.0f} ms",
        "worse": cur_ms > base_ms,
        "test": f"median test at the pooled {name} (hypergeometric, two-sided)",
        "p_value": p_value,
        "p_text": _p_text(p_value),
        "significant": p_value < options.alpha,
        "material": material,
    }


def _error_check(base: VersionRange, cur: VersionRange, options: PerfOptions) -> dict[str, Any]:
    """The analyzer's exact test of error counts (Fisher's), two-sided."""
    p_value = _two_sided(cur.errors, base.errors, base.count, cur.count)
    base_rate, cur_rate = base.errors / base.count, cur.errors / cur.count
    points = (cur_rate - base_rate) * 100
    return {
        "metric": "error rate",
        "baseline": f"{base_rate:.2%}",
        "current": f"{cur_rate:.2%}",
        "difference": f"{points:+.2f} points",
        "effect": f"error rate {points:+.1f} points",
        "worse": cur_rate > base_rate,
        "test": "Fisher's exact test of error counts (hypergeometric, two-sided)",
        "p_value": p_value,
        "p_text": _p_text(p_value),
        "significant": p_value < options.alpha,
        "material": abs(cur_rate - base_rate) >= options.min_error_rate_increase,
    }


def _compare(
    candidate: str, baseline: str, ranges: Mapping[str, VersionRange], options: PerfOptions
) -> dict[str, Any]:
    cur, base = ranges[candidate], ranges[baseline]
    entry: dict[str, Any] = {"candidate": candidate, "baseline": baseline, "checks": []}
    if min(cur.count, base.count) < options.min_samples:
        fewer = candidate if cur.count < base.count else baseline
        entry["verdict"] = (
            f"too few calls to compare v{candidate} with v{baseline}: v{fewer} has "
            f"{min(cur.count, base.count)}, at least {options.min_samples} needed"
        )
        entry["outcome"] = "insufficient"
        return entry
    checks = [_quantile_check(base, cur, q, options) for q in (0.5, 0.95)]
    checks.append(_error_check(base, cur, options))
    entry["checks"] = checks
    found = [c for c in checks if c["significant"] and c["material"]]
    latency = [c for c in found if c["metric"] != "error rate"]
    parts = []
    if latency:
        shown = latency[-1]  # the p95 when both moved
        parts.append(
            f"v{candidate} is {'slower' if shown['worse'] else 'faster'}: "
            f"{shown['effect']}, {shown['p_text']}"
        )
    for check in (c for c in found if c["metric"] == "error rate"):
        parts.append(
            f"v{candidate} {'fails more' if check['worse'] else 'fails less'}: "
            f"{check['effect']}, {check['p_text']}"
        )
    if parts:
        entry["verdict"] = "; ".join(parts) + f" (against v{baseline})"
        entry["outcome"] = "worse" if any(c["worse"] for c in found) else "better"
    else:
        p95 = checks[1]
        entry["verdict"] = (
            f"no material difference between v{candidate} and v{baseline}: "
            f"{p95['effect']}, {p95['p_text']}"
        )
        entry["outcome"] = "same"
    return entry


def version_compare_view(
    connection: sa.Connection,
    model: str,
    window,
    versions: Sequence[Mapping[str, Any]],
    ranges: Mapping[str, VersionRange] | None = None,
) -> dict[str, Any]:
    """Each version with calls in the range (p50, p95, error rate with its 95 % interval)
    and each comparison `_pairs` names, with its tests and a verdict; or why it is empty.
    `ranges`: the versions' figures (`version_ranges`) when the caller has read them."""
    options = PerfOptions()
    if ranges is None:
        ranges = version_ranges(connection, model, start_s=window.start_s, end_s=window.end_s)
    live = _live(versions)
    served = sorted(ranges, key=version_key)
    rows = []
    for version in served:
        entry = ranges[version]
        p50, p95 = quantiles(entry.histogram, [0.5, 0.95])
        low, high = binomial_interval(entry.errors, entry.count)
        rows.append(
            {
                "version": version,
                "live": version in live,
                "count": entry.count,
                "p50_ms": p50 / 1e6,
                "p95_ms": p95 / 1e6,
                "error_rate": entry.errors / entry.count,
                "error_low": low,
                "error_high": high,
            }
        )
    comparisons = [_compare(c, b, ranges, options) for c, b in _pairs(served, live)]
    empty = None
    if not served:
        empty = f"No calls of {model} in the last {window.name}: pick a longer range."
    elif not comparisons:
        empty = (
            f"Only v{served[0]} served in the last {window.name}: nothing to compare it with; "
            "a longer range may hold the version before it."
        )
    return {
        "rows": rows,
        "comparisons": comparisons,
        "empty": empty,
        "alpha": options.alpha,
        "min_latency_change": options.min_latency_increase,
        "min_latency_change_ms": options.min_latency_increase_ms,
        "min_error_change": options.min_error_rate_increase,
    }
