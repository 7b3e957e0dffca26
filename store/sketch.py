"""A mergeable log-bucketed latency histogram (DDSketch-style).

Bucket ``i`` holds values in ``(gamma**(i-1), gamma**i]`` with
``gamma = (1 + a) / (1 - a)``; reporting the bucket's midpoint
``2 * gamma**i / (gamma + 1)`` is within relative error ``a`` of every value in
it. With ``a = 0.5%`` any quantile read from merged buckets is within 0.5% of
the exact one. Merging two histograms is adding their counts, so one JSON
object per minute per model/version serves any time range.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain

import numpy as np

RELATIVE_ACCURACY = 0.005
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(GAMMA)


def bucket_indexes(values_ns: np.ndarray) -> np.ndarray:
    """The bucket index of each value (values below 1 count as 1)."""
    values = np.asarray(values_ns, dtype=np.float64)
    return np.ceil(np.log(np.maximum(values, 1.0)) / _LOG_GAMMA).astype(np.int64)


def bucket_counts(values_ns: Iterable[int] | np.ndarray) -> dict[str, int]:
    """The histogram of ``values_ns`` as ``{bucket index (str): count}``."""
    values = np.asarray(values_ns, dtype=np.float64)
    if values.size == 0:
        return {}
    indexes = bucket_indexes(values)
    keys, counts = np.unique(indexes, return_counts=True)
    return {str(k): int(c) for k, c in zip(keys.tolist(), counts.tolist(), strict=True)}


def merge_into(target: dict[str, int], other: Mapping[str, int]) -> dict[str, int]:
    """Add ``other``'s counts to ``target`` (in place) and return it."""
    for key, count in other.items():
        target[key] = target.get(key, 0) + count
    return target


def bucket_value(index: int) -> float:
    """The value reported for bucket ``index``: within RELATIVE_ACCURACY of its members."""
    return 2.0 * GAMMA**index / (GAMMA + 1.0)


def quantiles(histogram: Mapping[str, int], qs: Iterable[float]) -> list[float | None]:
    """Quantiles (``q`` in [0, 1]) of the values summarised by ``histogram``.

    The rank used is ``floor(q * (n - 1))`` of the sorted values (the "lower"
    quantile), whose value lies in the returned bucket.
    """
    items = sorted((int(k), c) for k, c in histogram.items() if c > 0)
    total = sum(c for _, c in items)
    result: list[float | None] = []
    if total == 0:
        return [None for _ in qs]
    cumulative = np.cumsum([c for _, c in items])
    for q in qs:
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile {q} is outside [0, 1]")
        rank = math.floor(q * (total - 1))
        position = int(np.searchsorted(cumulative, rank, side="right"))
        result.append(bucket_value(items[position][0]))
    return result


PERCENTILES = (0.5, 0.95, 0.99)
"""The percentiles the rollups keep next to their histograms."""


def percentiles(histogram: Mapping[str, int]) -> tuple[float | None, float | None, float | None]:
    """p50, p95, p99 of ``histogram``: the ranks and bucket values of `quantiles`, in one
    pass over the sorted buckets and without numpy (ingest recomputes them for every
    rollup row it merges, where numpy's per-call cost would dominate)."""
    items = sorted((int(k), c) for k, c in histogram.items() if c > 0)
    total = sum(c for _, c in items)
    if total == 0:
        return None, None, None
    found: list[float] = []
    index, below = 0, 0  # `below`: the count in buckets before `index`
    for q in PERCENTILES:  # ascending, so the walk only moves forward
        rank = math.floor(q * (total - 1))
        while below + items[index][1] <= rank:
            below += items[index][1]
            index += 1
        found.append(bucket_value(items[index][0]))
    return found[0], found[1], found[2]


def merged_percentiles(
    histograms: Sequence[Mapping[str, int]],
) -> tuple[float | None, float | None, float | None]:
    """`percentiles` of the histograms merged, without merging them: every bucket of every
    histogram sorted by index (equal indexes adjoin, so the running count still finds the
    rank's bucket). One numpy pass instead of a dict update per bucket: what a chart
    bucket or a range spanning many rollup rows costs."""
    n = sum(map(len, histograms))
    if n == 0:
        return None, None, None
    keys = np.fromiter(map(int, chain.from_iterable(histograms)), np.int64, n)
    counts = np.fromiter(chain.from_iterable(h.values() for h in histograms), np.int64, n)
    order = np.argsort(keys, kind="stable")
    cumulative = np.cumsum(counts[order])
    total = int(cumulative[-1])
    if total <= 0:
        return None, None, None
    ranks = [math.floor(q * (total - 1)) for q in PERCENTILES]
    positions = np.searchsorted(cumulative, ranks, side="right")
    found = [bucket_value(k) for k in keys[order[positions]].tolist()]
    return found[0], found[1], found[2]
