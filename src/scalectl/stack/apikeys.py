"""The local stack's API keys: a pool minted once per state dir by `stack up` (through the
app's own admin command, `python -m refapp.keys`), kept in <state dir>/secrets/api-keys.json
(0600), and handed to whatever calls the stack's /api: Locust scenarios (loadtest, drill,
the demo) through SCALECTL_API_KEYS_FILE, and probes through an Authorization header.

Every key of the pool belongs to one user (POOL_USER): the scenarios' simulated users share
a pool of hot submissions, and the app answers 404 to other users' ids. Each tier gets
POOL_PER_TIER keys, so each simulated user of the shipped scenarios and drills has a rate
limit bucket of its own."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scalectl.errors import CheckFailed, InputError
from scalectl.files import read_json

KEYS_FILE = Path("secrets") / "api-keys.json"
KEYS_ENV = "SCALECTL_API_KEYS_FILE"
KEY_ENV = "SCALECTL_API_KEY"
TIERS = ("premium", "basic", "free")
POOL_PER_TIER = 50
POOL_USER = 1000
MINT_TIMEOUT = 60.0


def keys_file(state_dir: Path) -> Path:
    """Where the stack in `state_dir` keeps its API key pool (whether or not it exists)."""
    return state_dir / KEYS_FILE


def mint_pool(state_dir: Path, app_env: Mapping[str, str], app_dir: Path) -> Path:
    """Mint the pool unless this state dir has one (keys are shown once: a lost file means
    `stack down` and a fresh state dir). Runs after PostgreSQL is up; the command creates
    the schema itself if no app has yet. Returns the pool's file; CheckFailed when the
    command fails (no half-written file is left)."""
    path = keys_file(state_dir)
    if path.exists():
        return path
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    argv = [sys.executable, "-m", "refapp.keys", "create", "--user", str(POOL_USER)]
    argv += [arg for tier in TIERS for arg in ("--tier", tier)]
    argv += ["--count", str(POOL_PER_TIER), "--out", str(path)]
    done = subprocess.run(
        argv,
        cwd=app_dir,
        env=dict(app_env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=MINT_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        path.unlink(missing_ok=True)  # never half a pool
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise CheckFailed(f"minting the stack's API keys failed: {last[:300]}")
    return path


def load(state_dir: Path) -> list[dict[str, Any]]:
    """The pool, or [] when this state dir has none (a stack started before keys)."""
    try:
        data = read_json(keys_file(state_dir))
    except InputError:  # missing, or broken (the state dir is not trusted): no pool
        return []
    return [k for k in data if isinstance(k, dict)] if isinstance(data, list) else []


def auth_headers(state_dir: Path, tier: str = "premium") -> dict[str, str]:
    """An Authorization header with the pool's first key of `tier` ({} without a pool)."""
    for entry in load(state_dir):
        if entry.get("tier") == tier and isinstance(entry.get("key"), str):
            return {"Authorization": f"Bearer {entry['key']}"}
    return {}


def scenario_env(environ: Mapping[str, str], state_dir: Path) -> dict[str, str]:
    """SCALECTL_API_KEYS_FILE for Locust children aimed at this stack, unless the caller
    chose keys already (SCALECTL_API_KEYS_FILE or SCALECTL_API_KEY in `environ`)."""
    if environ.get(KEYS_ENV) or environ.get(KEY_ENV):
        return {}
    path = keys_file(state_dir)
    return {KEYS_ENV: str(path.resolve())} if path.is_file() else {}
