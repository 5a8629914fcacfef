"""Benchmarks for scalectl, reported as ratios taken in one run (the machine is shared).

Run: .venv/bin/python bench/run.py [--repeat N]

- startup: `scalectl --help` against a bare `python -c pass`, the floor for any Python CLI.
- plan: sizing + rendering every config in-process, high-traffic plan against the small one.
- check: `plan --check` (all validators) against rendering alone, for the multi-tier plan.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXE = Path(sys.executable).parent / "scalectl"


def timed(fn: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    n = args.repeat

    bare = timed(lambda: run(sys.executable, "-c", "pass"), n)
    helped = timed(lambda: run(str(EXE), "--help"), n)
    print(
        f"startup: python -c pass {bare * 1000:.0f} ms, scalectl --help {helped * 1000:.0f} ms"
        f" -> ratio {helped / bare:.1f}x"
    )

    from scalectl.plan import prepare, render_files

    def render(name: str) -> Callable[[], object]:
        return lambda: render_files(prepare(ROOT / "examples" / f"{name}.yaml", "production"))

    render("small")()  # warm imports and template cache
    small = timed(render("small"), n)
    large = timed(render("high-traffic"), n)
    print(
        f"plan: small {small * 1000:.1f} ms, high-traffic {large * 1000:.1f} ms"
        f" -> ratio {large / small:.2f}x"
    )

    with tempfile.TemporaryDirectory() as tmp:
        plan = str(ROOT / "examples" / "multi-tier.yaml")
        only = timed(lambda: run(str(EXE), "plan", plan, "-o", f"{tmp}/a"), max(3, n // 5))
        checked = timed(
            lambda: run(str(EXE), "plan", plan, "-o", f"{tmp}/b", "--check"), max(3, n // 5)
        )
    print(
        f"check: render {only:.2f} s, render + validators {checked:.2f} s"
        f" -> ratio {checked / only:.1f}x"
    )


if __name__ == "__main__":
    main()
