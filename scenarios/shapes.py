"""Load shapes (LoadTestShape) for the mix; each stops by itself (tick returns None).

Parameters come from the environment, read when Locust instantiates the shape:

- StepShape: SCALECTL_SHAPE_USERS (50) in SCALECTL_SHAPE_STEPS (5) equal steps, each held
  SCALECTL_SHAPE_STEP_SECONDS (60); spawn rate SCALECTL_SHAPE_SPAWN_RATE (10/s).
  Finds the knee: the step where latency or errors turn.
- SpikeShape: SCALECTL_SHAPE_BASE_USERS (10% of users) for SCALECTL_SHAPE_DURATION (300 s),
  jumping to SCALECTL_SHAPE_USERS all at once at SCALECTL_SHAPE_SPIKE_AT (duration / 3) for
  SCALECTL_SHAPE_SPIKE_SECONDS (30). Exercises rate limits, shedding and recovery.
- SoakShape: SCALECTL_SHAPE_USERS ramped over SCALECTL_SHAPE_RAMP_SECONDS (60) and held
  until SCALECTL_SHAPE_DURATION (3600 s). Finds leaks, pool exhaustion, cache/queue growth.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import common  # noqa: E402
from locust import LoadTestShape  # noqa: E402


class StepShape(LoadTestShape):
    def __init__(self) -> None:
        super().__init__()
        self.users = common.env_int("SCALECTL_SHAPE_USERS", 50)
        self.steps = common.env_int("SCALECTL_SHAPE_STEPS", 5)
        self.step_seconds = common.env_float("SCALECTL_SHAPE_STEP_SECONDS", 60.0, minimum=1.0)
        self.spawn_rate = common.env_float("SCALECTL_SHAPE_SPAWN_RATE", 10.0, minimum=0.1)

    def tick(self) -> common.Tick:
        return common.step_tick(
            self.get_run_time(), self.users, self.steps, self.step_seconds, self.spawn_rate
        )


class SpikeShape(LoadTestShape):
    def __init__(self) -> None:
        super().__init__()
        self.peak = common.env_int("SCALECTL_SHAPE_USERS", 50)
        self.base = common.env_int("SCALECTL_SHAPE_BASE_USERS", max(1, self.peak // 10))
        self.duration = common.env_float("SCALECTL_SHAPE_DURATION", 300.0, minimum=1.0)
        self.spike_at = common.env_float("SCALECTL_SHAPE_SPIKE_AT", self.duration / 3)
        self.spike_seconds = common.env_float("SCALECTL_SHAPE_SPIKE_SECONDS", 30.0, minimum=1.0)
        self.spawn_rate = common.env_float("SCALECTL_SHAPE_SPAWN_RATE", 10.0, minimum=0.1)

    def tick(self) -> common.Tick:
        return common.spike_tick(
            self.get_run_time(),
            self.base,
            self.peak,
            self.spike_at,
            self.spike_seconds,
            self.duration,
            self.spawn_rate,
        )


class SoakShape(LoadTestShape):
    def __init__(self) -> None:
        super().__init__()
        self.users = common.env_int("SCALECTL_SHAPE_USERS", 50)
        self.ramp_seconds = common.env_float("SCALECTL_SHAPE_RAMP_SECONDS", 60.0)
        self.duration = common.env_float("SCALECTL_SHAPE_DURATION", 3600.0, minimum=1.0)

    def tick(self) -> common.Tick:
        return common.soak_tick(self.get_run_time(), self.users, self.ramp_seconds, self.duration)
