"""Where a reference-app worker spends its time under load: a py-spy profile, summarised.

Run: .venv/bin/python bench/profile_app.py [--seconds 12] [--path cached|uncached|mix]

It brings up its own stack (the same plan as bench/stack_bench.py, rate limits out of
reach but still checked), drives one instance directly with wrk, records one gunicorn worker
of that instance with py-spy (`uv tool install py-spy`) and prints the functions with the
largest share of that worker's busy samples, inclusive (a function and what it calls) and
self. Idle samples (the event loop waiting for I/O) are left out, so shares add up to the
worker's CPU time, not to wall time. Everything goes only to 127.0.0.1 and is bounded.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack_bench import _bench_plan, wrk


def summarise(raw: Path, top: int) -> None:
    """Print the `top` functions by inclusive and by self share of the busy samples."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
    if not total:
        print("no busy samples: was the worker under load?")
        return
    print(f"{total} busy samples")
    roots: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            roots[";".join(stack.split(";")[:2])] += int(count)
    for frame, n in roots.most_common(5):
        print(f"  root {100 * n / total:5.1f}%  {frame[:150]}")
    for title, counter in (("inclusive", inclusive), ("self", own)):
        print(f"top {top} by {title} share:")
        for frame, n in counter.most_common(top):
            print(f"  {100 * n / total:5.1f}%  {frame[:150]}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=12)
    parser.add_argument("--path", choices=("cached", "uncached", "mix"), default="cached")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    # `uv tool install` puts it in ~/.local/bin, which is not always on PATH.
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path.home() / ".local/bin"))
    if spy is None:
        raise SystemExit("py-spy is needed: uv tool install py-spy")

    from scalectl.stack import apikeys
    from scalectl.stack.run import down, up

    with tempfile.TemporaryDirectory(prefix="scalectl-profile-") as tmp:
        Path(tmp).chmod(0o711)  # PostgreSQL's account traverses it when run as root
        state_dir = Path(tmp) / "state"
        result = up(_bench_plan(Path(tmp)), "local", state_dir, timeout=120)
        try:
            apps = [m for m in result.state.members if m.kind == "app" and m.url]
            direct = str(apps[0].url)
            worker = psutil.Process(apps[0].pid).children()[0].pid
            auth = apikeys.auth_headers(state_dir, "premium")
            ids = []
            with httpx.Client(base_url=direct, timeout=10, headers=auth, trust_env=False) as cl:
                for i in range(50):
                    r = cl.post("/api/submissions", json={"title": f"cv {i}", "content": "x"})
                    r.raise_for_status()
                    ids.append(r.json()["id"])
            paths = [f"/api/submissions/{i}" for i in ids]
            headers = {**auth, "Cache-Control": "no-cache"} if args.path == "uncached" else auth
            write_every = 10 if args.path == "mix" else 0
            wrk(direct, paths, 3, 16, headers, write_every)  # warm the caches
            load = threading.Thread(
                target=wrk, args=(direct, paths, args.seconds + 2, 16, headers, write_every)
            )
            load.start()
            raw = Path(tmp) / "profile.raw"
            record = [spy, "record", "-p", str(worker), "-d", f"{args.seconds:g}", "-r", "100"]
            subprocess.run(
                [*record, "-f", "raw", "-o", str(raw), "--nonblocking"],
                check=True,
                capture_output=True,
            )
            load.join()
            summarise(raw, args.top)
        finally:
            down(state_dir)


if __name__ == "__main__":
    main()
