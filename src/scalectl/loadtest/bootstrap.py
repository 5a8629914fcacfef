"""Confidence intervals for `loadtest compare`: a block bootstrap over per-second histograms.

Each run's measured seconds (histograms.json, loadtest.windowfile) are cut into consecutive
non-overlapping blocks of L seconds, L about the cube root of the run's length (long enough
to keep correlated seconds, such as a slow minute, together; docs/loadtest.md says why this
length; at most MAX_BLOCKS blocks per side). A resample of a side draws its runs with
replacement, then each drawn run's blocks with replacement, and merges the drawn blocks'
histograms and counts exactly: a percentile is read from the merged histogram (as the
report's own), the error rate is failures ÷ requests, and throughput is requests ÷ the
seconds covered. RESAMPLES resamples per side with a fixed seed give the difference NEW −
BASE; its 2.5th and 97.5th percentiles are the 95% interval. With one run per side and
every block drawn once, the estimate is the report's own figure.

The verdict reads the interval against the comparison's margin (the tolerance and floor):
"regressed" when the whole interval is worse by more than the margin, "improved" when it is
better by more, otherwise "no significant change". numpy is imported here only, inside the
compare command.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from scalectl.errors import InputError
from scalectl.loadtest import hdr
from scalectl.loadtest.windowfile import RunWindows

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Floats = npt.NDArray[np.float64]

Verdict = Literal["regressed", "improved", "no significant change"]
RESAMPLES = 1000
CONFIDENCE = 0.95
SEED = 16  # fixed: the same reports give the same interval
MAX_BLOCKS = 250  # per side: bounds the work (resamples × blocks × histogram buckets)
MIN_BLOCKS = 5
MIN_SECONDS = MIN_BLOCKS  # a run shorter than this gives no interval
CHUNK = 100  # resamples merged at once: bounds the memory of the merged histograms
TOTAL = "Aggregated"
PERCENTILES = {"p50_ms": 50.0, "p95_ms": 95.0, "p99_ms": 99.0}
_Sparse = tuple[Any, Any]  # (counts indices, counts) of one histogram


@dataclass(frozen=True)
class Interval:
    """NEW − BASE for one metric: the estimate, its 95% interval, the margin a change must
    pass to count, and the verdict."""

    diff: float
    low: float
    high: float
    margin: float
    verdict: Verdict
    confidence: float = CONFIDENCE
    resamples: int = RESAMPLES

    def to_json(self) -> dict[str, Any]:
        """The interval as `scalectl loadtest compare --json` reports it."""
        return dict(self.__dict__)


class RunCache:
    """One run's per-second histograms, each decoded once however many scopes use it."""

    def __init__(self, run: RunWindows) -> None:
        self.run = run
        self._decoded: dict[tuple[int, str], _Sparse] = {}

    def sparse(self, second: int, key: str, text: str) -> _Sparse:
        """The counts of one endpoint-second's histogram, as (indices, counts)."""
        import numpy as np

        found = self._decoded.get((second, key))
        if found is None:
            try:
                hist = hdr.decode_checked(text)
            except hdr.BadHistogram as exc:
                raise InputError(
                    f"{self.run.path}: windows[{second}][{key!r}]: not a histogram ({exc})"
                ) from None
            counts = np.frombuffer(memoryview(hist.counts).cast("B"), dtype=np.uint64)
            # Only between the lowest and highest value recorded (as hdr.Summary does).
            first = min(hist._counts_index_for(hist.min_value), len(counts) - 1)
            last = min(hist._counts_index_for(hist.max_value), len(counts) - 1)
            index = np.flatnonzero(counts[first : last + 1]) + first
            found = (index, counts[index].astype(np.float64))
            hdr.release(hist)
            if found[1].sum() > 2**48:
                raise InputError(f"{self.run.path}: windows[{second}][{key!r}]: absurd counts")
            self._decoded[(second, key)] = found
        return found


@dataclass
class _Blocks:
    """One side's blocks, all runs together: counts per block and histogram triples."""

    run_sizes: list[int]
    requests: list[float]
    failures: list[float]
    seconds: list[float]
    rows: list[Any]  # block number per histogram count
    index: list[Any]  # counts index per count
    counts: list[Any]


def block_length(seconds: int, runs: int) -> int:
    """Seconds per block for a run of `seconds`: about its cube root, at least MIN_BLOCKS
    blocks per run when it can, and at most MAX_BLOCKS blocks per side."""
    length = max(1, round(math.pow(seconds, 1 / 3)))
    if seconds // length < MIN_BLOCKS:
        length = max(1, seconds // MIN_BLOCKS)
    return max(length, math.ceil(seconds * runs / MAX_BLOCKS))


def _blocks(side: Sequence[RunCache], key: str) -> _Blocks:
    import numpy as np

    out = _Blocks([], [], [], [], [], [], [])
    for cache in side:
        run = cache.run
        keys = sorted(run.aggregate) if key == TOTAL else [key]
        seconds = run.seconds
        length = block_length(len(seconds), len(side))
        first = len(out.requests)
        count = math.ceil(len(seconds) / length)
        out.run_sizes.append(count)
        out.requests += [0.0] * count
        out.failures += [0.0] * count
        out.seconds += [0.0] * count
        for i, second in enumerate(seconds):
            block = first + i // length
            out.seconds[block] += run.covered(second)
            for name in keys:
                entry = run.windows.get(second, {}).get(name)
                if entry is None:
                    continue
                out.requests[block] += entry[0]
                out.failures[block] += entry[1]
                index, counts = cache.sparse(second, name, entry[2])
                out.rows.append(np.full(len(index), block))
                out.index.append(index)
                out.counts.append(counts)
    return out


def intervals(
    base: Sequence[RunCache],
    new: Sequence[RunCache],
    key: str,
    margins: Mapping[str, tuple[float, bool]],
) -> dict[str, Interval]:
    """NEW − BASE with a 95% interval for each metric of `margins` (metric -> (margin, True
    when higher is worse)) of endpoint `key` (or the total), from a block bootstrap. A
    metric without a value on a side, or with too few usable resamples, is left out.
    Raises InputError for a histogram that cannot be decoded."""
    import numpy as np

    sides = [_blocks(base, key), _blocks(new, key)]
    columns = np.unique(np.concatenate([np.concatenate(s.index or [[]]) for s in sides]))
    high, _ = hdr.value_tables()
    values_ms = np.asarray(high, dtype=np.float64)[columns.astype(np.int64)] / 1000
    rng = np.random.default_rng([SEED, zlib.crc32(key.encode())])
    estimates, resampled = [], []
    for side in sides:
        matrix = np.zeros((len(side.requests), len(columns)))
        if side.index:
            cols = np.searchsorted(columns, np.concatenate(side.index))
            np.add.at(matrix, (np.concatenate(side.rows), cols), np.concatenate(side.counts))
        estimates.append(_statistics(np.ones((1, len(side.requests))), side, matrix, values_ms))
        resampled.append(_statistics(_weights(rng, side.run_sizes), side, matrix, values_ms))
    found: dict[str, Interval] = {}
    for metric, (margin, higher_is_worse) in margins.items():
        diff = float(estimates[1][metric][0] - estimates[0][metric][0])
        spread = resampled[1][metric] - resampled[0][metric]
        spread = spread[np.isfinite(spread)]
        if not math.isfinite(diff) or len(spread) < RESAMPLES * 0.9:
            continue
        tail = (1 - CONFIDENCE) / 2
        low, high_ = (float(v) for v in np.quantile(spread, [tail, 1 - tail]))
        worse_low, worse_high = (low, high_) if higher_is_worse else (-high_, -low)
        verdict: Verdict = (
            "regressed"
            if worse_low > margin
            else "improved"
            if worse_high < -margin
            else "no significant change"
        )
        found[metric] = Interval(diff, low, high_, margin, verdict)
    return found


def _weights(rng: Any, run_sizes: Sequence[int]) -> Floats:
    """RESAMPLES rows of block weights: how often each block was drawn (runs first, then
    each drawn run's blocks)."""
    import numpy as np

    runs = len(run_sizes)
    drawn = rng.multinomial(runs, [1 / runs] * runs, size=RESAMPLES)
    parts = [
        rng.multinomial(drawn[:, r] * size, [1 / size] * size) for r, size in enumerate(run_sizes)
    ]
    weights: Floats = np.concatenate(parts, axis=1).astype(np.float64)
    return weights


def _statistics(
    weights: Floats, side: _Blocks, matrix: Floats, values_ms: Floats
) -> dict[str, Floats]:
    """Each metric for each row of block weights (NaN where it has no value)."""
    import numpy as np

    requests = weights @ np.asarray(side.requests)
    failures = weights @ np.asarray(side.failures)
    seconds = weights @ np.asarray(side.seconds)
    with np.errstate(divide="ignore", invalid="ignore"):
        out: dict[str, Floats] = {
            "error_rate": np.where(requests > 0, failures / requests, np.nan),
            "rps": np.where(seconds > 0, requests / seconds, np.nan),
        }
    for metric in PERCENTILES:
        out[metric] = np.full(len(weights), np.nan)
    if not len(values_ms):
        return out
    width = len(values_ms)
    for start in range(0, len(weights), CHUNK):
        cumulative = np.cumsum(weights[start : start + CHUNK] @ matrix, axis=1)
        total = cumulative[:, -1]
        # One search for all rows: row i's counts shifted past every earlier row's.
        shift = np.arange(len(cumulative)) * (float(total.max()) + 1)
        flat = (cumulative + shift[:, None]).ravel()
        for metric, percentile in PERCENTILES.items():
            # As hdr.Summary.percentile: the first bucket whose cumulative count reaches it.
            target = np.maximum(np.floor(percentile * total / 100 + 0.5), 1)
            at = np.searchsorted(flat, target + shift) - np.arange(len(cumulative)) * width
            at = np.minimum(at, width - 1)
            out[metric][start : start + CHUNK] = np.where(total > 0, values_ms[at], np.nan)
    return out
