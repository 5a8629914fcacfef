"""The open model's pacing in Locust's processes (`scalectl loadtest --rate`): each user
waits for its next scheduled arrival instead of its `wait_time`, and every arrival is
counted, late or on time, in the process's OpenModel (child/recording.py). plugin.py wraps
the user classes at test_start; the closed model never comes here.
"""

from __future__ import annotations

import math
import random
import time
from typing import Any

import gevent

from scalectl.loadtest.child.recording import OpenModel

LATE_SECONDS = 0.010  # an open-model arrival starting later than this is counted late


def pace(user_class: Any, open_model: OpenModel) -> None:
    """Wrap the class's wait_time and on_start: the user waits for its next scheduled
    arrival (before its first task too)."""
    if getattr(user_class, "_scalectl_paced", False):
        return
    wait_time, on_start = user_class.wait_time, user_class.on_start

    def paced_wait(self: Any) -> float:
        if open_model.curve is None:
            return float(wait_time(self))
        _next_arrival(self, open_model)
        return 0.0

    def paced_start(self: Any) -> None:
        on_start(self)
        if open_model.curve is not None:
            _next_arrival(self, open_model)

    user_class.wait_time = paced_wait
    user_class.on_start = paced_start
    user_class._scalectl_paced = True


def _next_arrival(user: Any, open_model: OpenModel) -> None:
    """Sleep until this user's next intended start, then count the arrival."""
    curve, origin = open_model.curve, open_model.origin
    assert curve is not None and origin is not None
    schedule = getattr(user, "_scalectl_schedule", None)
    if schedule is None:
        # A random phase, so users spawned together do not send in lockstep; the arrivals
        # that fell due before the user existed are not its own (the ramp-up's, not late).
        phase = random.random()
        first = max(0, math.ceil(curve.integral(time.time() - origin) - phase))
        schedule = [phase, float(first)]
        user._scalectl_schedule = schedule
        open_model.schedules.append(schedule)
    intended = origin + curve.time_of(schedule[1] + schedule[0])
    schedule[1] += 1
    if math.isinf(intended):
        # The rate fell to 0 for good: nothing more is due; wait to be stopped.
        while user._state != "stopping":
            gevent.sleep(1)
        return
    delay = intended - time.time()
    if delay > 0:
        gevent.sleep(delay)
    if user._state == "stopping":
        return
    started = time.time()
    lag = started - intended
    second = int(started)
    open_model.arrivals[second] += 1
    if lag > LATE_SECONDS:
        open_model.late[second] += 1
        lag_us = int(lag * 1_000_000)
        open_model.max_lag_us[second] = max(open_model.max_lag_us.get(second, 0), lag_us)
    open_model.intended[id(gevent.getcurrent())] = intended
