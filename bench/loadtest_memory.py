"""Load-generator memory against run length: scalectl loadtest vs plain Locust, one run each.

Run: .venv/bin/python bench/loadtest_memory.py [--seconds 180] [--endpoints 10] [--rate 1000]
     [--only scalectl]  (an hour's soak without the floor's hour beside it)

Both drive the same nginx `return 200` with the same locustfile: `--endpoints` named
requests, `constant_throughput` users sending `--rate` requests/s in all, one Locust process.
Every second the resident memory (RSS) of the Locust process is sampled. Reported: RSS at
20 s and at the end, the growth per second after 20 s (a least-squares slope), and that
growth per endpoint-second; plain Locust's own growth is the floor, measured in the same
run. The goal (issue 15): scalectl's growth at most 1 KB per endpoint-second, so an hour's
soak of 10 endpoints stays under 300 MB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from loadtest_bench import NGINX_CONF  # noqa: E402

LOCUSTFILE = """
from locust import FastHttpUser, constant_throughput, task

RATE_PER_USER = {per_user}


class Spread(FastHttpUser):
    wait_time = constant_throughput(RATE_PER_USER)

    @task
    def one(self):
        n = self.environment.runner.stats.num_requests % {endpoints}
        self.client.get("/", name=f"/e{{n}}")
"""
USERS = 20
SETTLED_S = 20  # start-up allocations are over by then


def _locust_rss(root: psutil.Process) -> int:
    """The largest RSS among `root` and its descendants that run Locust."""
    best = 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            if "locust" in " ".join(proc.cmdline()):
                best = max(best, proc.memory_info().rss)
        except psutil.Error:
            continue
    return best


def _sample(argv: list[str], seconds: int, cwd: Path) -> list[tuple[float, int]]:
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    root = psutil.Process(proc.pid)
    started = time.monotonic()
    samples: list[tuple[float, int]] = []
    while proc.poll() is None and time.monotonic() - started < seconds + 120:
        elapsed = time.monotonic() - started
        if elapsed <= seconds:
            rss = _locust_rss(root)
            if rss:
                samples.append((elapsed, rss))
        time.sleep(1)
    if proc.poll() is None:
        proc.kill()
    return samples


def _requests_sent(report: Path) -> int | None:
    """The run's total request count from scalectl's report.json, if it wrote one."""
    import json

    try:
        return int(json.loads(report.read_text())["total"]["requests"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _slope(samples: list[tuple[float, int]]) -> float:
    """Bytes per second after SETTLED_S, least squares."""
    points = [(t, r) for t, r in samples if t >= SETTLED_S]
    if len(points) < 3:
        return float("nan")
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_r = sum(r for _, r in points) / n
    cov = sum((t - mean_t) * (r - mean_r) for t, r in points)
    var = sum((t - mean_t) ** 2 for t, _ in points)
    return cov / var


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=180)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--only", choices=("scalectl", "plain locust"), default=None)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from scalectl.stack.process import free_port, wait_for

    nginx = shutil.which("nginx", path=os.environ.get("PATH", "") + ":/usr/sbin")
    if not nginx:
        raise SystemExit("needs nginx: apt-get install nginx")
    with tempfile.TemporaryDirectory(prefix="scalectl-membench-") as tmp:
        work = Path(tmp)
        for sub in ("logs", "tmp"):
            (work / sub).mkdir()
        port = free_port()
        (work / "nginx.conf").write_text(NGINX_CONF % port)
        (work / "spread.py").write_text(
            LOCUSTFILE.format(per_user=args.rate / USERS, endpoints=args.endpoints)
        )
        server = subprocess.Popen(
            [nginx, "-p", f"{work}/", "-c", str(work / "nginx.conf"), "-g", "daemon off;"]
        )
        url = f"http://127.0.0.1:{port}"
        try:
            import httpx

            wait_for(lambda: httpx.get(url).status_code == 200, timeout=10)
            s = args.seconds
            plain = [sys.executable, "-m", "locust", "-f", str(work / "spread.py"), "--headless"]
            plain += ["-u", str(USERS), "-r", str(USERS), "-t", f"{s}s", "-H", url]
            plain += ["--only-summary", "--loglevel", "ERROR"]
            ours = [str(Path(sys.executable).parent / "scalectl"), "loadtest"]
            ours += [str(work / "spread.py"), "-H", url, "-u", str(USERS), "-r", str(USERS)]
            ours += ["-t", f"{s}s", "--processes", "1", "--report-dir", str(work / "report")]
            argvs = {"plain locust": plain, "scalectl": ours}
            runs = {
                name: _sample(argv, s, work)
                for name, argv in argvs.items()
                if args.only in (None, name)
            }
            sent = _requests_sent(work / "report" / "report.json")
        finally:
            server.terminate()
            server.wait(10)
    print(f"{args.endpoints} endpoints, {args.rate:g} requests/s, {args.seconds} s per run")
    slopes = {}
    for name, samples in runs.items():
        at = {round(t): r for t, r in samples}
        first = next((r for t, r in samples if t >= SETTLED_S), 0)
        last = samples[-1][1] if samples else 0
        slopes[name] = slope = _slope(samples)
        per = slope / args.endpoints
        hour = (first + slope * 3600) / 2**20
        print(
            f"  {name:13} RSS {first / 2**20:6.1f} MB at {SETTLED_S} s, {last / 2**20:6.1f} MB "
            f"at the end; growth {slope / 1024:7.2f} KB/s = {per:6.0f} B per endpoint-second; "
            f"an hour: {hour:6.0f} MB ({len(at)} samples)"
        )
    if sent is not None:
        print(f"scalectl sent {sent:,} requests: {sent / args.seconds:,.0f}/s achieved")
    if len(slopes) == 2:
        floor = slopes["plain locust"]
        print(f"growth over plain Locust's: {slopes['scalectl'] - floor:+.0f} B/s")


if __name__ == "__main__":
    main()
