"""Reference-app benchmark on the local stack, reported as ratios from one run.

Run: .venv/bin/python bench/stack_bench.py [--seconds 8] [--concurrency 16]

It brings up its own stack on free loopback ports (and down again), then measures:
- cached vs uncached `GET /api/submissions/{id}` (uncached sends `Cache-Control: no-cache`,
  which makes the app skip its cache read and go to PostgreSQL), through nginx and directly
  to one app instance: throughput and p95;
- SQL statements per request under a read-heavy mix (90% reads over Zipf-ish hot ids,
  10% writes), from the app's own `db_queries_total` counters.

The GET phases are driven by wrk (installed from Debian when missing and root): a Python
client saturates at a few hundred requests/s, below what the cache makes possible, and would
measure itself. The mixed phase uses an asyncio httpx client, since its figure (SQL per
request) does not depend on the generator's speed. Everything is bounded in time and count
and goes only to 127.0.0.1. The generator shares the machine's cores with the stack, so
absolute numbers are low and noisy; the ratios are what to read.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MAX_REQUESTS = 200_000  # hard bound per phase, whatever the duration
PREMIUM = {"X-API-Tier": "premium", "X-API-Key": "bench"}


async def _load(
    base: str,
    paths: list[str],
    seconds: float,
    concurrency: int,
    headers: dict[str, str] | None = None,
    write_every: int = 0,
) -> tuple[int, int, list[float]]:
    latencies: list[float] = []
    errors = 0
    sent = 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base, timeout=10, limits=limits, headers=PREMIUM
    ) as client:

        async def user() -> None:
            nonlocal errors, sent
            while time.monotonic() < deadline and sent < MAX_REQUESTS:
                sent += 1
                start = time.perf_counter()
                if write_every and sent % write_every == 0:
                    response = await client.post(
                        "/api/submissions",
                        json={
                            "user_id": random.randint(1, 50),
                            "title": "bench",
                            "content": "x y z",
                        },
                        headers=headers,
                    )
                else:
                    response = await client.get(random.choice(paths), headers=headers)
                latencies.append(time.perf_counter() - start)
                if response.status_code >= 400:
                    errors += 1

        await asyncio.gather(*(user() for _ in range(concurrency)))
    return sent, errors, latencies


WRK_SCRIPT = """
local paths = {%s}
request = function()
  return wrk.format(nil, paths[math.random(#paths)])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%d %%f\\n", summary.requests,
    e.connect + e.read + e.write + e.status + e.timeout, latency:percentile(95) / 1000))
end
"""


def _wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, capture_output=True)
        found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is needed for this benchmark: apt-get install wrk")
    return found


def _wrk(
    base: str, paths: list[str], seconds: float, concurrency: int, headers: dict[str, str]
) -> dict[str, float]:
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(WRK_SCRIPT % ", ".join(f'"{p}"' for p in paths))
    argv = [_wrk_binary(), "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "-s", str(script)]
    for key, value in headers.items():
        argv += ["-H", f"{key}: {value}"]
    out = subprocess.run([*argv, base], capture_output=True, text=True, check=True).stdout
    script.unlink()
    requests, errors, p95 = out.split("RESULT", 1)[1].split()[:3]
    return {"rps": int(requests) / seconds, "p95": float(p95), "errors": int(errors)}


def _summary(
    name: str, sent: int, errors: int, lat: list[float], seconds: float
) -> dict[str, float]:
    p95 = statistics.quantiles(lat, n=100)[94] * 1000 if len(lat) >= 100 else float("nan")
    rps = sent / seconds
    print(f"  {name:34s} {rps:8.0f} rps   p95 {p95:7.1f} ms   errors {errors}")
    return {"rps": rps, "p95": p95}


def _queries(urls: list[str]) -> float:
    total = 0.0
    for url in urls:
        text = httpx.get(f"{url}/metrics", timeout=5).text
        for match in re.finditer(r"^db_queries_total\{[^}]*\} ([0-9.e+]+)$", text, re.M):
            total += float(match.group(1))
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    from tests.stack.conftest import local_plan

    from scalectl.stack.run import down, up

    with tempfile.TemporaryDirectory(prefix="scalectl-bench-") as tmp:
        plan = local_plan(Path(tmp))
        # Measure the stack, not the rate limiter: a premium key with a limit out of reach.
        plan.write_text(
            plan.read_text()
            .replace("premium: {rps: 500, burst: 1000}", "premium: {rps: 1000000, burst: 1000000}")
            .replace("per_ip: {rps: 2000, burst: 4000}", "per_ip: {rps: 1000000, burst: 1000000}")
        )
        Path(tmp).chmod(0o711)  # PostgreSQL's account traverses it when run as root
        state_dir = Path(tmp) / "state"
        result = up(plan, "local", state_dir, timeout=120)
        try:
            state = result.state
            via_nginx = state.urls["app"]
            instances = [m.url for m in state.members if m.kind == "app" and m.url]
            direct = instances[0]
            ids = []
            with httpx.Client(base_url=via_nginx, timeout=10, headers=PREMIUM) as client:
                for i in range(50):
                    r = client.post(
                        "/api/submissions",
                        json={"user_id": i % 10 + 1, "title": f"cv {i}", "content": "python " * 50},
                    )
                    ids.append(r.json()["id"])
            paths = [f"/api/submissions/{i}" for i in ids]
            uncached = {"Cache-Control": "no-cache"}
            s, c = args.seconds, args.concurrency
            print(
                f"load: wrk, {c} connections, {s:g} s per phase (2 × {s / 2:g} s, ABBA), "
                f"{len(paths)} hot ids"
            )
            res = {}
            # The first seconds after start-up are noisy (Prometheus, workers, autovacuum
            # settling): the first phase's tail was 10x worse than the same phase later.
            _wrk(via_nginx, paths, 5, c, PREMIUM)
            phases = {
                "cached GET via nginx": (via_nginx, PREMIUM),
                "uncached GET via nginx": (via_nginx, {**PREMIUM, **uncached}),
                "cached GET direct": (direct, PREMIUM),
                "uncached GET direct": (direct, {**PREMIUM, **uncached}),
            }
            # ABBA order, twice each, averaged: drift over the run favours neither side.
            order = [*phases, *reversed(phases)]
            runs: dict[str, list[dict[str, float]]] = {label: [] for label in phases}
            for label in order:
                base, headers = phases[label]
                runs[label].append(_wrk(base, paths, s / 2, c, headers))
            for label, measured in runs.items():
                res[label] = r = {
                    k: statistics.fmean(m[k] for m in measured) for k in ("rps", "p95", "errors")
                }
                print(
                    f"  {label:34s} {r['rps']:8.0f} rps   p95 {r['p95']:7.1f} ms"
                    f"   errors {r['errors']:.0f}"
                )

            before = _queries(instances)
            hot = paths[:10] * 9 + paths  # a skewed, read-heavy id mix
            mix = hot + ["/api/stats", "/api/users/1/submissions"] * 5
            sent, errors, lat = asyncio.run(_load(via_nginx, mix, s, c, None, write_every=10))
            after = _queries(instances)
            _summary("read-heavy mix (10% writes)", sent, errors, lat, s)
            per_request = (after - before) / max(sent, 1)

            print("ratios (same run):")
            for where in ("via nginx", "direct"):
                cached, cold = res[f"cached GET {where}"], res[f"uncached GET {where}"]
                print(
                    f"  {where}: cached/uncached throughput {cached['rps'] / cold['rps']:.2f}x, "
                    f"p95 {cached['p95'] / cold['p95']:.2f}x"
                )
            print(
                "  nginx/direct cached throughput "
                f"{res['cached GET via nginx']['rps'] / res['cached GET direct']['rps']:.2f}x"
            )
            print(f"  SQL statements per request, read-heavy mix: {per_request:.3f}")
        finally:
            down(state_dir)


if __name__ == "__main__":
    main()
