"""What the reference app's own layers cost per request, without an HTTP server.

Run: .venv/bin/python bench/app_cost.py [--requests 5000] [--rounds 2] [--path cached|uncached]

It brings up the stack (bench/stack_bench.py's plan), then in child processes calls two
ASGI apps directly, request after request, with the same kind of scope an HTTP server
would pass: the reference app (`refapp.main:app`, with the instance's own settings, so
against the stack's Redis and PostgreSQL) serving `GET /api/submissions/{id}` with a
premium key, and the floor (bench/bare_app.py) serving its bare route. Each child prints
its best and median time of 5 passes in microseconds per request; children alternate
(app, floor, floor, app, ...).

No sockets, HTTP parsing or kernel time are in the figure, and a single process runs
flat out: so it is steady (a few percent between runs where wrk's figures move by tens),
and a lever's effect on the app's own code shows in one run. It is not a throughput: the
server and the kernel add the same cost per request to both (bench/profile_app.py shows
how much). The access log goes to a file, as in the stack.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
PASSES = 5


async def _drive(app: Any, paths: list[str], headers: dict[str, str], n: int) -> list[float]:
    """Microseconds per request of `n` requests, for each of PASSES passes."""
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()] + [(b"host", b"bench")]
    statuses: set[int] = set()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.add(message["status"])

    def scope(path: str) -> dict[str, Any]:
        return {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": raw,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }

    for i in range(200):  # warm: caches, leases, code paths
        await app(scope(paths[i % len(paths)]), receive, send)
    if statuses != {200}:
        raise SystemExit(f"the app answered {sorted(statuses)}, not only 200")
    per_pass = []
    for _ in range(PASSES):
        started = time.perf_counter()
        for i in range(n):
            await app(scope(paths[i % len(paths)]), receive, send)
        per_pass.append((time.perf_counter() - started) / n * 1e6)
    return per_pass


async def _child(which: str, n: int) -> None:
    spec = json.loads(os.environ["BENCH_SPEC"])
    if which == "floor":
        sys.path.insert(0, str(BENCH))
        import bare_app

        timings = await _drive(bare_app.app, spec["floor"], {}, n)
    else:
        sys.path.insert(0, str(BENCH.parent / "reference_app"))
        from refapp.main import app

        async with app.router.lifespan_context(app):
            timings = await _drive(app, spec["paths"], spec["headers"], n)
    print(json.dumps({"best": min(timings), "median": statistics.median(timings)}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=5000, help="per pass (5 passes)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--path", choices=("cached", "uncached"), default="cached")
    parser.add_argument("--child", choices=("app", "floor"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(_child(args.child, min(args.requests, 100_000)))
        return

    import psutil
    from stack_bench import bench_stack, seed

    from scalectl.stack import apikeys

    with bench_stack("scalectl-cost-") as (state_dir, state):
        apps = [m for m in state.members if m.kind == "app" and m.url]
        auth = apikeys.auth_headers(state_dir, "premium")
        ids = seed(str(apps[0].url), auth, "x")
        headers = {**auth, "Cache-Control": "no-cache"} if args.path == "uncached" else auth
        # The instance's own settings (database, Redis, limits), from its environment.
        env = dict(psutil.Process(apps[0].pid).environ())
        metrics = tempfile.TemporaryDirectory(prefix="scalectl-cost-metrics-")
        env["PROMETHEUS_MULTIPROC_DIR"] = metrics.name
        env["BENCH_SPEC"] = json.dumps(
            {
                "paths": [f"/api/submissions/{i}" for i in ids],
                "floor": [f"/bare/{i}" for i in ids],
                "headers": headers,
            }
        )
        results: dict[str, list[dict[str, float]]] = {"app": [], "floor": []}
        with metrics, tempfile.TemporaryFile() as log:  # log: the access lines, as in the stack
            for _ in range(args.rounds):
                for which in ("app", "floor", "floor", "app"):
                    argv = [sys.executable, __file__, "--child", which]
                    argv += ["--requests", str(args.requests)]
                    done = subprocess.run(
                        argv, env=env, stdout=subprocess.PIPE, stderr=log, check=True, timeout=600
                    )
                    results[which].append(json.loads(done.stdout.splitlines()[-1]))
        app = statistics.median(r["median"] for r in results["app"])
        floor = statistics.median(r["median"] for r in results["floor"])
        print(f"in-process, {args.path} GET, {args.requests} requests x {PASSES} passes per run")
        for which, runs in results.items():
            shown = ", ".join(f"{r['median']:.1f}" for r in runs)
            print(f"  {which:6s} median {statistics.median(r['median'] for r in runs):6.1f} us"
                  f" per request (runs: {shown})")  # fmt: skip
        print(f"  the app's layers cost {app - floor:.1f} us per request over the floor's route;"
              f" app / floor {app / floor:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
