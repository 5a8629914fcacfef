"""Progress while a load test runs: exact numbers from a live file, the plain line for logs,
and the live panel at a real (pseudo-)terminal."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hdrh.histogram import HdrHistogram

from scalectl.commands.loadtest_progress import plain_line, snapshot, sparkline
from tests.conftest import fixture_path
from tests.loadtest.server import serve


def encoded(*micros: int) -> str:
    hist = HdrHistogram(1, 3_600_000_000, 3)
    for value in micros:
        hist.record_value(value)
    return hist.encode().decode("ascii")


def test_snapshot_reads_counts_and_recent_percentiles() -> None:
    now = 1_000_100.5
    live = {
        "started_at": 1_000_090.0,
        "users_now": 7,
        "endpoints": {
            "GET /a": {"requests": 40, "failures": 2},
            # recorded with "aggregate": false (a job's completion time): left out
            "JOB done": {"requests": 5, "failures": 5, "aggregate": False},
        },
        "windows": {
            "1000098": {"GET /a": [10, 1, encoded(*[10_000] * 10)]},
            "1000099": {"GET /a": [20, 1, encoded(*[20_000] * 19, 200_000)]},
            "1000100": {"GET /a": [3, 0, encoded(5_000, 5_000, 5_000)]},  # still filling
        },
    }
    s = snapshot(live, now=now)
    assert (s.elapsed, s.users, s.requests, s.failures) == (10, 7, 40, 2)
    assert s.history == [0] * 8 + [10, 20]  # from the start, the current second left out
    assert s.rps == pytest.approx(6.0)  # (0 + 0 + 0 + 10 + 20) / 5
    assert s.p50_ms == pytest.approx(20.0, rel=0.001)
    assert s.p95_ms == pytest.approx(20.0, rel=0.001)
    assert plain_line(s) == "t=10s users=7 rps=6 p50=20.0ms p95=20.0ms errors=2 (5.0%) requests=40"


def test_sparkline_scales_to_the_peak() -> None:
    assert sparkline([0, 1, 2, 4, 8]) == "▁▁▂▄█"
    assert sparkline([0, 0]) == "▁▁"
    assert sparkline([]) == ""


@pytest.mark.stack
def test_live_panel_at_a_terminal(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "scalectl"
    with serve() as url:
        argv = [str(exe), "loadtest", str(fixture_path("locust", "known.py")), "-H", url]
        argv += ["-u", "4", "-t", "6s", "--processes", "1", "--report-dir", str(tmp_path)]
        leader, follower = pty.openpty()
        env = {**os.environ, "COLUMNS": "100", "LINES": "40", "TERM": "xterm"}
        env.pop("NO_COLOR", None)
        proc = subprocess.Popen(argv, stdin=follower, stdout=follower, stderr=follower, env=env)
        os.close(follower)
        chunks = []
        deadline = time.monotonic() + 90
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([leader], [], [], 1)
                if ready:
                    try:
                        data = os.read(leader, 65536)
                    except OSError:  # the child closed the terminal
                        break
                    if not data:
                        break
                    chunks.append(data)
                elif proc.poll() is not None:
                    break
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
            os.close(leader)
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0, screen
    assert "scalectl loadtest" in screen and "p95 ms" in screen
    assert any(bar in screen for bar in "▂▃▄▅▆▇█"), screen  # a sparkline drawn
    assert "\x1b[" in screen  # the cursor moved: a live display, not log lines
    assert "t=" not in screen  # and no plain progress lines
    assert "Endpoints" in screen  # the final tables follow
