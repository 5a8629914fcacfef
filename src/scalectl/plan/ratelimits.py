"""The plan's rate limits as nginx and the reference app write them, and where nginx cannot
be exact.

nginx's `limit_req_zone` counts a whole number per second or per minute only (`10r/s`,
`100r/m`); the app (refapp/ratelimit.py) takes a whole count per second, minute, hour or day
(`100/hour`). A limit neither can state exactly is rounded to the nearest one that is not
stricter, so no client the plan admits is refused, and `scalectl plan` warns by how much.
"""

from __future__ import annotations

import math
from fractions import Fraction

from scalectl.plan.loadbalancer import RateLimit, RateLimits


def _edge(limit: RateLimit) -> tuple[int, str]:
    """nginx's count and unit ("s" or "m") for `limit`."""
    per_second = limit.per_second
    if limit.rate is not None:
        count, _, window = limit.rate.partition("/")
        if window in ("second", "minute"):
            return int(count), window[0]  # as written: 120/minute stays 120r/m
    elif per_second.denominator == 1:
        return int(per_second), "s"
    return math.ceil(per_second * 60), "m"


def nginx_rate(limit: RateLimit) -> str:
    """`limit_req_zone`'s rate: exact per second or per minute (also an `rps` that is a whole
    count per minute: 0.5 is 30r/m); otherwise the smallest whole r/m not stricter than it."""
    count, unit = _edge(limit)
    return f"{count}r/{unit}"


def _app(limit: RateLimit) -> tuple[int, str]:
    """The app's count and window for `limit`."""
    if limit.rate is not None:
        count, _, window = limit.rate.partition("/")
        return int(count), window
    per_second = limit.per_second
    if per_second.denominator == 1:
        return int(per_second), "second"
    if per_second >= 1:
        # Per second, rounded up: as a count per minute (2.5 is 150) the app's limiter would
        # admit the whole minute's count at once, where a second's count is its burst now.
        return math.ceil(per_second), "second"
    return math.ceil(per_second * 60), "minute"


def app_rate(limit: RateLimit) -> str:
    """The app's RATE_LIMIT_* value: `rate` as written; an `rps` per second when whole or at
    least 1 (rounded up), else per minute: exactly when it is a whole count per minute,
    otherwise the smallest count not stricter than it."""
    count, window = _app(limit)
    return f"{count}/{window}"


_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def _times(factor: Fraction) -> str:
    # Enough digits that a factor just above 1 does not print as 1.
    for digits in (3, 4, 7):
        text = f"{float(factor):.{digits}g}"
        if text != "1":
            break
    return text


def warnings(limits: RateLimits) -> list[str]:
    """One line per limit that nginx (and, for an `rps` that is no whole count per minute, the
    app) enforces more loosely than the plan states, by how much."""
    named = [("per_ip", limits.per_ip), *((f"tiers.{t}", v) for t, v in limits.tiers.items())]
    out = []
    for name, limit in named:
        if limit is None:
            continue
        count, unit = _edge(limit)
        factor = Fraction(count, 60 if unit == "m" else 1) / limit.per_second
        app_count, window = _app(limit)
        if factor <= 1 and Fraction(app_count, _SECONDS[window]) <= limit.per_second:
            continue
        where = f"load_balancer.rate_limits.{name}"
        if limit.rate is not None:
            out.append(
                f"{where}: nginx counts per second or per minute only, so its edge limit is "
                f"{count}r/{unit}, {_times(factor)}× looser than {limit.rate}; the app "
                f"enforces {limit.rate} exactly"
            )
        else:
            app_count, window = _app(limit)
            app_factor = Fraction(app_count, _SECONDS[window]) / limit.per_second
            looser = [f"nginx's {count}r/{unit} ({_times(factor)}×)"] if factor > 1 else []
            if app_factor > 1:
                looser.append(f"the app's {app_count}/{window} ({_times(app_factor)}×)")
            out.append(
                f"{where}: rps {limit.rps:g} is rounded up to a whole count: "
                + " and ".join(looser)
                + " looser; state it as `rate:` with a window that holds it exactly"
            )
    return out
