"""Percentiles and means read from HDR histograms (loadtest.hdr) are exactly hdrh's own,
for histograms recorded, decoded from the wire and merged, as the plugin and rawjson make
them."""

from __future__ import annotations

import random

import pytest
from hdrh.histogram import HdrHistogram

from scalectl.loadtest.hdr import Summary
from scalectl.loadtest.results import Latency


def _histogram(rng: random.Random) -> HdrHistogram:
    hist = HdrHistogram(1, 3_600_000_000, 3)
    centre, spread = rng.uniform(2, 14), rng.uniform(0.05, 2.5)
    for _ in range(rng.choice([1, 2, 7, 100, 2000])):
        value = max(1, min(int(rng.lognormvariate(centre, spread)), 3_600_000_000))
        hist.record_value(value, rng.choice([1, 1, 4]))
    return hist


@pytest.mark.parametrize("form", ["recorded", "decoded", "merged"])
def test_the_same_values_as_hdrh(form: str) -> None:
    rng = random.Random(form)
    for _ in range(25):
        hist = _histogram(rng)
        if form == "decoded":
            hist = HdrHistogram.decode(hist.encode())
        elif form == "merged":
            merged = HdrHistogram(1, 3_600_000_000, 3)
            merged.add(hist)
            merged.add(HdrHistogram.decode(_histogram(rng).encode()))
            hist = merged
        summary = Summary(hist)
        assert summary.total == hist.get_total_count()
        for p in (50.0, 90.0, 95.0, 99.0, 99.9, 100.0):
            assert summary.percentile(p) == hist.get_value_at_percentile(p), p
        assert summary.mean == pytest.approx(hist.get_mean_value(), rel=1e-9)
        assert summary.max_value == hist.get_max_value()


def test_an_empty_histogram() -> None:
    summary = Summary(HdrHistogram(1, 3_600_000_000, 3))
    assert (summary.total, summary.percentile(95), summary.mean) == (0, 0, 0.0)
    assert Latency.of(HdrHistogram(1, 3_600_000_000, 3)).p95_ms is None
