"""Helpers shared by the scenarios: pure Python, no Locust import.

Kept free of Locust (and so of gevent's monkey patching) so tests can import it directly.
Locustfiles import it as a sibling module (`import common`): Locust puts the locustfile's
directory at the front of `sys.path` while it imports the file, and each locustfile also
adds its own directory, so the import works from any working directory.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
import os
import random
from typing import NamedTuple

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


class ApiKey(NamedTuple):
    """One API key of the app (`python -m refapp.keys create` mints them): the app takes
    the user and the tier from the key, never from a header."""

    key: str
    user: int
    tier: str


NO_KEYS = (
    "no API key of tier {tier}: set SCALECTL_API_KEYS_FILE to a JSON list of "
    "{{key, user, tier}} (`scalectl stack up` writes <state dir>/secrets/api-keys.json) "
    "or SCALECTL_API_KEY with SCALECTL_API_USER"
)
_keys: list[ApiKey] | None = None
_next_key: dict[str, itertools.count[int]] = {}


def _parse_keys(raw: object, source: str) -> list[ApiKey]:
    if not isinstance(raw, list):
        raise ValueError(f"{source}: expected a JSON list of {{key, user, tier}}")
    keys = []
    for index, item in enumerate(raw):
        ok = (
            isinstance(item, dict)
            and isinstance(item.get("key"), str)
            and isinstance(item.get("user"), int)
            and item.get("tier") in TIERS
        )
        if not ok:
            raise ValueError(f"{source}: entry {index}: expected {{key, user, tier}}")
        keys.append(ApiKey(item["key"], item["user"], item["tier"]))
    return keys


def api_keys() -> list[ApiKey]:
    """The keys this run may use: SCALECTL_API_KEYS_FILE, else SCALECTL_API_KEY (its user in
    SCALECTL_API_USER, its tier in SCALECTL_API_TIER). Read once per process."""
    global _keys
    if _keys is None:
        path = os.environ.get("SCALECTL_API_KEYS_FILE", "").strip()
        single = os.environ.get("SCALECTL_API_KEY", "").strip()
        if path:
            try:
                with open(path, encoding="utf-8") as handle:
                    raw = json.load(handle)
            except (OSError, ValueError) as exc:
                raise ValueError(f"SCALECTL_API_KEYS_FILE={path}: {exc}") from exc
            _keys = _parse_keys(raw, path)
        elif single:
            user = env_int("SCALECTL_API_USER", 0, minimum=0)
            if user < 1:
                raise ValueError("SCALECTL_API_KEY needs SCALECTL_API_USER (the key's user id)")
            _keys = [ApiKey(single, user, api_tier())]
        else:
            _keys = []
    return _keys


def take_key(tier: str | None = None) -> ApiKey:
    """The next key of `tier` (default SCALECTL_API_TIER), round-robin: each simulated
    user gets its own key while there are enough."""
    wanted = tier or api_tier()
    pool = [k for k in api_keys() if k.tier == wanted]
    if not pool:
        raise ValueError(NO_KEYS.format(tier=wanted))
    index = next(_next_key.setdefault(wanted, itertools.count()))
    return pool[index % len(pool)]


def client_headers(key: ApiKey | None = None) -> dict[str, str]:
    """One simulated client's headers: its own API key (the app limits per key)."""
    chosen = key or take_key()
    return {"Authorization": f"Bearer {chosen.key}", "Accept": "application/json"}


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
