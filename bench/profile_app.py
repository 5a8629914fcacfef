"""Where a reference-app worker spends its time under load: a py-spy profile, summarised.

Run: .venv/bin/python bench/profile_app.py [--seconds 12] [--path cached|uncached|mix|post]
     .venv/bin/python bench/profile_app.py --floor   (the bare route, profiled the same way)

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
import uuid
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack_bench import bare_floor, bench_stack, seed, wrk

FRAMEWORK = "framework: uvicorn, Starlette, FastAPI routing"
# Where a sample goes in the per-pattern table: the deepest frame in its stack that
# matches one of these (a substring of "function (file:line)"), else "framework".
PATTERNS = (
    ("(refapp/telemetry.py", "telemetry: request id, route label"),
    ("AuthMiddleware", "API key (in-process cache)"),
    ("LoadShedMiddleware", "load shedding"),
    ("RateLimitMiddleware", "rate limit (leases, Redis)"),
    # The framework's own layers under our middlewares: routing, exception handling.
    ("Router.__call__", FRAMEWORK),
    ("ExceptionMiddleware.__call__", FRAMEWORK),
    ("AsyncExitStackMiddleware", FRAMEWORK),
    ("get_request_handler", FRAMEWORK),
    ("solve_dependencies", "FastAPI dependencies"),
    ("serialize_response", "FastAPI response validation and serialization"),
    ("(refapp/api.py", "route: cache lookup and cached body"),
    ("(refapp/cache.py", "route: cache lookup and cached body"),
    ("(prometheus_client/", "Prometheus metrics (multiprocess)"),
    ("(logging/", "access log line"),
    ("(refapp/logs.py", "access log line"),
    ("(redis/", "Redis client"),
    ("(psycopg", "PostgreSQL client"),
    ("RequestResponseCycle.send", "uvicorn: writing the response"),
)


def _pattern(frames: list[str]) -> str:
    for frame in reversed(frames):
        for marker, name in PATTERNS:
            if marker in frame:
                return name
    return FRAMEWORK


def summarise(raw: Path, top: int, cpu_per_request_us: float | None) -> None:
    """Print each pattern's share of the busy samples (and its CPU time per request), then
    the `top` functions by inclusive and by self share."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    patterns: collections.Counter[str] = collections.Counter()
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
        patterns[_pattern(frames)] += n
    if not total:
        print("no busy samples: was the worker under load?")
        return
    per_request = f", {cpu_per_request_us:.0f} us CPU per request" if cpu_per_request_us else ""
    print(f"{total} busy samples{per_request}")
    print("by pattern (share of the worker's busy samples; us per request):")
    for name, n in patterns.most_common():
        cost = f"{cpu_per_request_us * n / total:6.0f} us" if cpu_per_request_us else ""
        print(f"  {100 * n / total:5.1f}%  {cost}  {name}")
    for title, counter in (("inclusive", inclusive), ("self", own)):
        print(f"top {top} by {title} share:")
        for frame, n in counter.most_common(top):
            print(f"  {100 * n / total:5.1f}%  {frame[:150]}")


def _cpu_by_program() -> dict[str, float]:
    """CPU seconds (user + system) of every process, summed by program: the app's workers,
    the queue worker, PostgreSQL, Redis, nginx, wrk, and the rest."""
    out: dict[str, float] = collections.defaultdict(float)
    for proc in psutil.process_iter(["name", "cmdline", "cpu_times"]):
        times, argv = proc.info["cpu_times"], proc.info["cmdline"] or []
        if times is None:
            continue
        line = " ".join(argv)
        name = next(
            (k for k in ("gunicorn", "dramatiq", "postgres", "valkey", "redis", "nginx", "wrk")
             if k in line or k in (proc.info["name"] or "")),
            "other",
        )  # fmt: skip
        out[name] += times.user + times.system
    return out


def profile(
    spy: str,
    base: str,
    paths: list[str],
    headers: dict[str, str],
    write_every: int,
    master: int,
    seconds: float,
    raw: Path,
) -> float | None:
    """Drive `base` with wrk while py-spy records one worker of the gunicorn `master` into
    `raw`; print the CPU each program spent meanwhile; the worker's CPU µs per request."""
    worker = psutil.Process(master).children()[0].pid
    wrk(base, paths, 3, 16, headers, write_every)  # warm the caches
    served: list[dict[str, float]] = []
    load = threading.Thread(
        target=lambda: served.append(wrk(base, paths, seconds + 2, 16, headers, write_every))
    )
    process = psutil.Process(worker)
    cpu_before = sum(process.cpu_times()[:2])
    machine_before = _cpu_by_program()
    load.start()
    record = [spy, "record", "-p", str(worker), "-d", f"{seconds:g}", "-r", "100"]
    subprocess.run([*record, "-f", "raw", "-o", str(raw), "--nonblocking"], check=True,
                   capture_output=True)  # fmt: skip
    load.join()
    cpu = sum(process.cpu_times()[:2]) - cpu_before
    machine = _cpu_by_program()
    spent = {k: machine[k] - machine_before.get(k, 0.0) for k in machine}
    print(f"CPU seconds by program over the {seconds + 2:g} s of load:")
    for name, used in sorted(spent.items(), key=lambda kv: -kv[1])[:8]:
        print(f"  {used:6.2f}  {name}")
    # The workers share the requests about evenly.
    workers = len(psutil.Process(master).children())
    requests = served[0]["rps"] * (seconds + 2) / max(1, workers) if served else 0
    return 1e6 * cpu / requests if requests else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=12)
    parser.add_argument("--path", choices=("cached", "uncached", "mix", "post"), default="cached")
    parser.add_argument(
        "--floor", action="store_true", help="profile the bare route (the floor) instead"
    )
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--keep", type=Path, help="copy py-spy's raw profile here")
    args = parser.parse_args()
    # `uv tool install` puts it in ~/.local/bin, which is not always on PATH.
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path.home() / ".local/bin"))
    if spy is None:
        raise SystemExit("py-spy is needed: uv tool install py-spy")

    if args.floor:  # the bare route under 2 workers, as stack_bench.py starts it
        with tempfile.TemporaryDirectory(prefix="scalectl-profile-") as tmp, bare_floor(2) as bare:
            raw = Path(tmp) / "profile.raw"
            ids = [str(uuid.UUID(int=n + 1)) for n in range(50)]
            # The gunicorn master bare_floor started, a child of this process.
            master = next(
                p.pid for p in psutil.Process().children() if "bare_app:app" in p.cmdline()
            )
            us = profile(spy, bare, [f"/bare/{i}" for i in ids], {}, 0, master, args.seconds, raw)
            summarise(raw, args.top, us)
            if args.keep:
                shutil.copy(raw, args.keep)
        return

    from scalectl.stack import apikeys

    with bench_stack("scalectl-profile-") as (state_dir, state):
        apps = [m for m in state.members if m.kind == "app" and m.url]
        direct = str(apps[0].url)
        auth = apikeys.auth_headers(state_dir, "premium")
        ids = seed(direct, auth, "x")
        paths = [f"/api/submissions/{i}" for i in ids]
        headers = {**auth, "Cache-Control": "no-cache"} if args.path == "uncached" else auth
        write_every = {"mix": 10, "post": 1}.get(args.path, 0)
        raw = state_dir.parent / "profile.raw"  # inside the temporary directory
        us = profile(spy, direct, paths, headers, write_every, apps[0].pid, args.seconds, raw)
        summarise(raw, args.top, us)
        if args.keep:
            shutil.copy(raw, args.keep)


if __name__ == "__main__":
    main()
