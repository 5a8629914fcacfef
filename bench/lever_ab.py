"""One lever's effect on a cached read, back to back: the stack with each setting in turn.

Run: .venv/bin/python bench/lever_ab.py NAME=VALUE [NAME=VALUE ...] [--seconds 8] [--rounds 2]

Each argument is an app setting (an environment variable the stack passes on, such as
RATE_LIMIT_LEASE_MAX=1 or ACCESS_LOG_EVERY=10); `-` is the defaults. For each, in turn and
for --rounds rounds, it brings up the stack (bench/stack_bench.py's plan) and measures, with
wrk in ABBA order, the bare-route floor and a cached `GET /api/submissions/{id}` sent
directly to one instance, then prints requests/s and the ratio to the floor per setting
(the median over rounds). Alternating settings across rounds spreads a shared machine's
drift over all of them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack_bench import _workers_of, bare_floor, bench_stack, seed, wrk


def measure(setting: str, seconds: float) -> tuple[float, float]:
    """(cached GET direct, floor) in requests/s for one stack started with `setting`."""
    from scalectl.stack import apikeys

    name, _, value = setting.partition("=")
    saved = os.environ.get(name) if name != "-" else None
    if name != "-":
        os.environ[name] = value
    try:
        with bench_stack("scalectl-ab-") as (state_dir, state):
            apps = [m for m in state.members if m.kind == "app" and m.url]
            direct = str(apps[0].url)
            with bare_floor(_workers_of(apps[0].pid)) as bare:
                auth = apikeys.auth_headers(state_dir, "premium")
                ids = seed(direct, auth, "x")
                paths = [f"/api/submissions/{i}" for i in ids]
                floor = [f"/bare/{i}" for i in ids]
                wrk(direct, paths, 3, 16, auth)  # warm the caches
                runs: dict[str, list[float]] = {"app": [], "floor": []}
                for which in ("app", "floor", "floor", "app"):
                    base, targets, headers = (
                        (direct, paths, auth) if which == "app" else (bare, floor, {})
                    )
                    runs[which].append(wrk(base, targets, seconds / 2, 16, headers)["rps"])
                return statistics.fmean(runs["app"]), statistics.fmean(runs["floor"])
    finally:
        if name != "-":
            if saved is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = saved


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("settings", nargs="+", help="NAME=VALUE, or - for the defaults")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float]]] = {s: [] for s in args.settings}
    for _ in range(max(1, args.rounds)):
        for setting in args.settings:
            results[setting].append(measure(setting, args.seconds))
    print(f"cached GET direct vs the bare-route floor, {args.rounds} rounds (median):")
    for setting, pairs in results.items():
        app = statistics.median(a for a, _ in pairs)
        ratio = statistics.median(a / f for a, f in pairs)
        print(f"  {setting:32s} {app:8.0f} rps   ratio to floor {ratio:.2f}")


if __name__ == "__main__":
    main()
