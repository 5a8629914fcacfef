"""Helpers shared by the scenarios: pure Python, no Locust import.

Kept free of Locust (and so of gevent's monkey patching) so tests can import it directly.
Locustfiles import it as a sibling module (`import common`): Locust puts the locustfile's
directory at the front of `sys.path` while it imports the file, and each locustfile also
adds its own directory, so the import works from any working directory.
"""

from __future__ import annotations

import bisect
import itertools
import math
import os
import random
import uuid

TIERS = ("premium", "basic", "free")
DEFAULT_TIER = "premium"

# Request names: "<Type> <Name>" as Locust reports them is the plan's SLO endpoint key.
SUBMISSIONS = "/api/submissions"
SUBMISSION = "/api/submissions/{id}"
SUBMISSION_NO_CACHE = "/api/submissions/{id} [no-cache]"
USER_SUBMISSIONS = "/api/users/{id}/submissions"
JOB = "/api/jobs/{id}"
STATS = "/api/stats"
JOB_E2E_TYPE = "JOB"
JOB_E2E_NAME = "analyse end-to-end"


# --- environment ------------------------------------------------------------------------


def env_int(name: str, default: int, *, minimum: int = 1) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r}: expected an integer") from exc
    if value < minimum:
        raise ValueError(f"{name}={value}: must be at least {minimum}")
    return value


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r}: expected a number") from exc
    if not math.isfinite(value) or value < minimum:
        raise ValueError(f"{name}={value}: must be a finite number >= {minimum}")
    return value


def api_tier() -> str:
    tier = os.environ.get("SCALECTL_API_TIER", DEFAULT_TIER).strip().lower() or DEFAULT_TIER
    if tier not in TIERS:
        raise ValueError(f"SCALECTL_API_TIER={tier!r}: expected one of {', '.join(TIERS)}")
    return tier


def client_headers() -> dict[str, str]:
    """One simulated client: its tier and its own API key (the app limits per key in a tier)."""
    return {
        "X-API-Tier": api_tier(),
        "X-API-Key": f"scalectl-load-{uuid.uuid4().hex[:16]}",
        "Accept": "application/json",
    }


# --- randomness -------------------------------------------------------------------------

_user_counter = itertools.count()


def rng_for_user() -> random.Random:
    """A generator per simulated user; reproducible when SCALECTL_SEED is set."""
    index = next(_user_counter)
    seed = os.environ.get("SCALECTL_SEED", "").strip()
    if seed:
        return random.Random(f"{seed}:{index}")
    return random.Random()


class Zipf:
    """Ranks 0..n-1 with P(k) proportional to 1/(k+1)^s: a few hot keys, a long tail.

    A finite inverse-CDF sampler (bisect over cumulative weights), so it needs no numpy and
    every draw is bounded. s around 1 is typical of web content popularity.
    """

    def __init__(self, n: int, s: float = 1.1, rng: random.Random | None = None) -> None:
        if n < 1:
            raise ValueError("n must be at least 1")
        if s < 0:
            raise ValueError("s must be >= 0")
        self.n = n
        self.s = s
        self.rng = rng or random.Random()
        total = 0.0
        cumulative = []
        for k in range(1, n + 1):
            total += 1.0 / k**s
            cumulative.append(total)
        self._cumulative = cumulative
        self._total = total

    def sample(self) -> int:
        point = self.rng.random() * self._total
        return min(bisect.bisect_right(self._cumulative, point), self.n - 1)


# --- documents --------------------------------------------------------------------------

_FIRST = ("Ada", "Grace", "Linus", "Barbara", "Ken", "Margaret", "Dennis", "Radia", "Alan")
_LAST = ("Lovelace", "Hopper", "Torvalds", "Liskov", "Thompson", "Hamilton", "Ritchie")
_ROLES = (
    "Software Engineer",
    "Data Analyst",
    "Site Reliability Engineer",
    "Product Manager",
    "Backend Developer",
    "QA Engineer",
)
_COMPANIES = ("Acme Corp", "Globex", "Initech", "Umbrella", "Hooli", "Stark Industries")
_SKILLS = (
    "Python",
    "PostgreSQL",
    "Redis",
    "Kubernetes",
    "Terraform",
    "Go",
    "TypeScript",
    "Prometheus",
    "FastAPI",
    "Kafka",
    "Rust",
    "AWS",
    "Linux",
    "CI/CD",
)
_VERBS = ("Led", "Built", "Designed", "Migrated", "Reduced", "Automated", "Scaled", "Owned")
_OBJECTS = (
    "the billing pipeline",
    "a multi-region deployment",
    "on-call tooling",
    "the search service",
    "p99 latency by 40%",
    "cloud costs by 25%",
    "a team of five engineers",
    "the data warehouse",
)


def cv_length(rng: random.Random, median: int = 2500, spread: float = 0.8) -> int:
    """A document length: log-normal around `median` chars, clamped to 200..40000."""
    return max(200, min(40_000, int(rng.lognormvariate(math.log(median), spread))))


def cv_text(rng: random.Random, length: int | None = None) -> tuple[str, str]:
    """A (title, content) pair that reads like a CV, about `length` characters long."""
    target = length if length is not None else cv_length(rng)
    name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
    role = rng.choice(_ROLES)
    parts = [
        f"{name}\n{role}\n",
        "Summary\n"
        f"{role} with {rng.randint(1, 25)} years of experience in "
        f"{', '.join(rng.sample(_SKILLS, 3))}.\n",
        "Experience\n",
    ]
    size = sum(len(p) for p in parts)
    # Bounded: each line adds at least 30 characters and the target is at most 40000.
    for _ in range(5000):
        if size >= target:
            break
        line = (
            f"- {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} at {rng.choice(_COMPANIES)} "
            f"({rng.randint(2005, 2025)}), using {rng.choice(_SKILLS)}.\n"
        )
        parts.append(line)
        size += len(line)
    parts.append(f"Skills\n{', '.join(rng.sample(_SKILLS, 5))}\n")
    title = f"CV {name} - {role}"[:200]
    return title, "".join(parts)


def priority(rng: random.Random) -> str:
    return rng.choices(("high", "default", "low"), weights=(1, 7, 2))[0]


# --- load shape schedules (pure; the LoadTestShape classes in shapes.py call these) ------

Tick = tuple[int, float] | None


def step_tick(t: float, users: int, steps: int, step_seconds: float, spawn_rate: float) -> Tick:
    """`steps` equal steps up to `users`, each held `step_seconds`; then stop."""
    if t >= steps * step_seconds:
        return None
    step = int(t // step_seconds) + 1
    return max(1, math.ceil(users * step / steps)), spawn_rate


def spike_tick(
    t: float,
    base: int,
    peak: int,
    spike_at: float,
    spike_seconds: float,
    duration: float,
    spawn_rate: float,
) -> Tick:
    """`base` users, then `peak` (started at once) from `spike_at` for `spike_seconds`,
    back to `base` until `duration`; then stop."""
    if t >= duration:
        return None
    if spike_at <= t < spike_at + spike_seconds:
        return peak, float(max(peak, 1))
    return base, spawn_rate


def soak_tick(t: float, users: int, ramp_seconds: float, duration: float) -> Tick:
    """Ramp to `users` over `ramp_seconds`, hold until `duration`; then stop."""
    if t >= duration:
        return None
    return users, max(users / max(ramp_seconds, 1.0), 0.1)
