"""How long `scalectl stack up` and `scalectl stack down` take, and where down's time goes.

Run: .venv/bin/python bench/stack_lifecycle_bench.py [--cycles 3] [--idle 5] [--src DIR]

Each cycle runs the real CLI in a subprocess, as a user would (so the stack's processes
outlive the command that started them, as they do for a user):
- `stack up` on free loopback ports (the reference plan), timed;
- some traffic through nginx (writes, which queue jobs, and reads), then `--idle` seconds
  of nothing, so keep-alive connections, pools and scrapes are what an idle stack holds;
- `stack down --json`, timed, with each member's own stop time from its output.
The last cycle is a busy one: a request (3 s, /api/debug/sleep) is in flight when down
starts; it must still answer 200, and down must take about as long as it.

`--src DIR` runs the scalectl found in DIR (e.g. an older checkout's `src`, from
`git archive`) to compare before and after with the same command. Traffic goes only to
127.0.0.1; every wait is bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def scalectl(env: dict[str, str], *args: str) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "scalectl", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"scalectl {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return took, done.stdout


def traffic(base: str) -> None:
    with httpx.Client(base_url=base, timeout=10, trust_env=False) as client:
        ids = []
        for i in range(20):
            created = client.post(
                "/api/submissions",
                json={"user_id": i % 5 + 1, "title": f"bench {i}", "content": "python sql"},
            )
            ids.append(created.json()["id"])
        for i in range(200):
            client.get(f"/api/submissions/{ids[i % len(ids)]}")


@dataclass(frozen=True)
class Cycle:
    up: float
    down: float
    members: dict[str, float | None]  # each member's own stop time, as down reports it
    answered: list[int]  # status of the request in flight (busy cycle)


def cycle(env: dict[str, str], idle: float, busy: bool) -> Cycle:
    from tests.helpers.stack import local_plan

    root = Path(tempfile.mkdtemp(prefix="scalectl-lifecycle-"))
    root.chmod(0o711)  # PostgreSQL's account traverses it when run as root (docs/stack.md)
    plan, state = local_plan(root), root / "state"
    try:
        up, _ = scalectl(env, "stack", "up", "--plan", str(plan), "--state-dir", str(state))
        app = json.loads((state / "state.json").read_text())["urls"]["app"]
        traffic(app)
        time.sleep(idle)
        answered: list[int] = []
        slow = threading.Thread(
            target=lambda: answered.append(
                httpx.get(f"{app}/api/debug/sleep?ms=3000", timeout=30, trust_env=False).status_code
            )
        )
        if busy:
            slow.start()
            time.sleep(0.5)  # accepted and sleeping
        down, out = scalectl(env, "stack", "down", "--state-dir", str(state), "--json")
        if busy:
            slow.join(30)
        members = {s["name"]: s.get("seconds") for s in json.loads(out)["stopped"]}
        return Cycle(up, down, members, answered)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=3, help="idle cycles (then one busy)")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds idle before down")
    parser.add_argument("--src", type=Path, help="run the scalectl package found in DIR")
    args = parser.parse_args()
    env = {**os.environ}
    if args.src:
        env["PYTHONPATH"] = str(args.src.resolve())

    idle = []
    for n in range(1, max(1, args.cycles) + 1):
        result = cycle(env, args.idle, busy=False)
        idle.append(result)
        members = "  ".join(
            name if sec is None else f"{name} {sec:.2f}" for name, sec in result.members.items()
        )
        print(f"idle {n}: up {result.up:.1f} s, down {result.down:.1f} s  [{members}]")
    busy = cycle(env, args.idle, busy=True)
    print(
        f"busy (a 3 s request in flight): down {busy.down:.1f} s, "
        f"the request answered {busy.answered or 'nothing'}"
    )
    ups = [r.up for r in idle]
    downs = [r.down for r in idle]
    print(
        f"median of {len(idle)}: stack up {statistics.median(ups):.1f} s, "
        f"stack down {statistics.median(downs):.1f} s (idle)"
    )


if __name__ == "__main__":
    main()
