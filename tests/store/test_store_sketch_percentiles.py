"""The percentile helpers the rollups and their reads use agree with `sketch.quantiles`."""

from __future__ import annotations

import random

from inferloop.store.sketch import merge_into, merged_percentiles, percentiles, quantiles


def _histogram(rng: random.Random) -> dict[str, int]:
    return {str(rng.randint(-5, 400)): rng.randint(0, 9) for _ in range(rng.randint(0, 40))}


def test_percentiles_of_merged_histograms_equal_the_quantiles_of_their_merge():
    rng = random.Random(17)
    for _ in range(1000):
        parts = [_histogram(rng) for _ in range(rng.randint(1, 6))]
        merged: dict[str, int] = {}
        for part in parts:
            merge_into(merged, part)
        expected = quantiles(merged, (0.5, 0.95, 0.99))
        assert list(percentiles(merged)) == expected
        assert list(merged_percentiles(parts)) == expected


def test_no_calls_have_no_percentiles():
    assert percentiles({}) == merged_percentiles([]) == (None, None, None)
    assert merged_percentiles([{}, {"3": 0}]) == (None, None, None)
