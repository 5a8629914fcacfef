"""A ramping arrival rate (`scalectl loadtest --rate-stages 0s:100,60s:1000,150s:0`): rate
points over the run's time, linear between them, the last rate held after the last point
(k6's `ramping-arrival-rate`). The open model schedules the n-th arrival where the rate's
integral reaches n, and the verdict compares each stage's achieved rate with its intended
one.

Plain arithmetic, no locust or gevent: the Locust plugin imports it too.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scalectl.duration import parse_duration

# A stage with fewer intended arrivals than this is not checked on its own: with every user
# starting at a random phase its count is off by a few arrivals, a large share of a few.
MIN_STAGE_ARRIVALS = 50


@dataclass(frozen=True)
class RateCurve:
    """Arrivals per second over seconds since the run's start: `points` are (time, rate), the
    first at 0, times non-decreasing (two at one time make a step), rates >= 0."""

    points: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if not self.points or self.points[0][0] != 0:
            raise ValueError("the first stage must be at 0s")
        times = [t for t, _ in self.points]
        if any(b < a for a, b in itertools.pairwise(times)):
            raise ValueError("stage times must not go back")
        if any(r < 0 or not math.isfinite(r) for _, r in self.points):
            raise ValueError("rates must be numbers >= 0")
        if self.peak <= 0:
            raise ValueError("at least one stage must have a rate above 0")

    @classmethod
    def parse(cls, text: str) -> RateCurve:
        """From `0s:100,60s:1000,120s:1000,150s:0` (time in -t's duration grammar, a colon,
        arrivals per second). Raises ValueError naming what is wrong."""
        points = []
        for part in text.split(","):
            at, sep, rate = part.strip().partition(":")
            if not sep:
                raise ValueError(f"expected TIME:RATE such as 60s:1000, got '{part.strip()}'")
            try:
                value = float(rate)
            except ValueError:
                raise ValueError(f"'{part.strip()}': the rate must be a number") from None
            points.append((parse_duration(at, allow_zero=True), value))
        return cls(tuple(points))

    @classmethod
    def constant(cls, rate: float) -> RateCurve:
        """A held rate, as `--rate`."""
        return cls(((0.0, rate),))

    def text(self) -> str:
        """The form `parse` reads, in seconds, exact: how the curve reaches Locust."""
        return ",".join(f"{t!r}:{r!r}" for t, r in self.points)

    def label(self) -> str:
        """For people: `0s:100,60s:1000`."""
        return ",".join(f"{t:g}s:{r:g}" for t, r in self.points)

    @property
    def end(self) -> float:
        """The last point's time: the run's length unless -t says otherwise."""
        return self.points[-1][0]

    @property
    def peak(self) -> float:
        """The highest rate anywhere."""
        return max(r for _, r in self.points)

    def scaled(self, factor: float) -> RateCurve:
        """Every rate times `factor`: one user's share of the whole rate."""
        return RateCurve(tuple((t, r * factor) for t, r in self.points))

    def mean(self, start: float, end: float) -> float:
        """The mean rate from `start` to `end` seconds (0 for an empty span)."""
        return (self.integral(end) - self.integral(start)) / (end - start) if end > start else 0.0

    def rate_at(self, t: float) -> float:
        """The rate at `t` seconds (0 before the start, the last rate after the last point)."""
        if t < 0:
            return 0.0
        for (t0, r0), (t1, r1) in itertools.pairwise(self.points):
            if t < t1:
                return r0 + (r1 - r0) * (t - t0) / (t1 - t0)
        return self.points[-1][1]

    def integral(self, t: float) -> float:
        """Arrivals intended from the start up to `t` seconds: the area under the rate."""
        if t <= 0:
            return 0.0
        area = 0.0
        for (t0, r0), (t1, r1) in itertools.pairwise(self.points):
            if t <= t0:
                return area
            if t1 > t0:
                upto = min(t, t1)
                at_upto = r0 + (r1 - r0) * (upto - t0) / (t1 - t0)
                area += (upto - t0) * (r0 + at_upto) / 2
        last_t, last_r = self.points[-1]
        return area + max(0.0, t - last_t) * last_r

    def time_of(self, n: float) -> float:
        """When the integral reaches `n` arrivals: the time of the n-th one; inf when the rate
        drops to 0 for good before."""
        if n <= 0:
            return 0.0
        done = 0.0
        for (t0, r0), (t1, r1) in itertools.pairwise(self.points):
            area = (t1 - t0) * (r0 + r1) / 2
            if done + area >= n and t1 > t0:
                # Solve r0·x + (r1 - r0)/(2·d)·x² = m for x in [0, d]; this form also holds
                # for a flat segment and for one starting at rate 0.
                m, slope = n - done, (r1 - r0) / (t1 - t0)
                root = math.sqrt(max(0.0, r0 * r0 + 2 * slope * m))
                return t0 + (2 * m / (r0 + root) if r0 + root > 0 else 0.0)
            done += area
        last_t, last_r = self.points[-1]
        return last_t + (n - done) / last_r if last_r > 0 else math.inf

    def stages(self) -> list[tuple[float, float]]:
        """The spans between points (start, end), steps left out; then the hold after the
        last point, to infinity."""
        spans = [(a, b) for (a, _), (b, _) in itertools.pairwise(self.points)]
        return [s for s in spans if s[1] > s[0]] + [(self.end, math.inf)]


@dataclass(frozen=True)
class StageRate:
    """One stage of a ramping run: its span (seconds since the start) and the arrivals per
    second intended and achieved over the whole measured seconds it holds."""

    start: float
    end: float  # inf: the hold after the last point
    seconds: int  # whole measured seconds counted
    intended: float  # arrivals per second, mean over those seconds
    achieved: float

    @property
    def checked(self) -> bool:
        """Whether enough arrivals were intended to judge this stage on its own."""
        return self.intended * self.seconds >= MIN_STAGE_ARRIVALS

    def missed(self, tolerance: float) -> bool:
        """The achieved rate is more than `tolerance` (a fraction) off the intended one."""
        return self.checked and abs(self.achieved - self.intended) > tolerance * self.intended

    def label(self) -> str:
        """`60s-120s` or `150s-end`."""
        end = "end" if math.isinf(self.end) else f"{self.end:g}s"
        return f"{self.start:g}s-{end}"


def stage_rates(
    curve: RateCurve,
    arrivals: Mapping[int, int],
    span: tuple[int, int],
    offset: float,
) -> list[StageRate]:
    """Each stage's intended and achieved rate over the whole seconds of `span` ([first,
    last) as keys of `arrivals`, arrivals started per second) that lie entirely within it.
    Second `t` covers run time [t - offset, t + 1 - offset), `offset` being how far into its
    wall-clock second the run started; its intended arrivals are the exact integral over it.
    A second straddling two stages belongs to neither: a step up at its middle would blame
    the stage before for what the next one asked. Stages the span does not reach, or that
    hold no whole second, are left out."""
    first, last = span
    out = []
    for start, end in curve.stages():
        seconds = [t for t in range(first, last) if start <= t - offset and t + 1 - offset <= end]
        if not seconds:
            continue
        intended = sum(curve.integral(t + 1 - offset) - curve.integral(t - offset) for t in seconds)
        started = sum(arrivals.get(t, 0) for t in seconds)
        out.append(
            StageRate(start, end, len(seconds), intended / len(seconds), started / len(seconds))
        )
    return out


def missed_stages(rates: Sequence[StageRate], tolerance: float) -> list[StageRate]:
    """The stages whose achieved rate missed the intended one by more than `tolerance`."""
    return [s for s in rates if s.missed(tolerance)]
