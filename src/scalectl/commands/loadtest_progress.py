"""What `scalectl loadtest` shows while it runs: a live rich panel at a terminal, a plain
line every few seconds otherwise (CI logs: no cursor movement, no spinners).

Both read the live file the Locust master rewrites every second. Only counts are read for
throughput and errors; percentiles decode just the last PERCENTILE_SECONDS of histograms, so
watching costs scalectl's process little next to the generator it shares the host with.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from scalectl.output import Output

PLAIN_EVERY = 5.0  # seconds between plain progress lines
SPARK_SECONDS = 60  # throughput history in the sparkline
PERCENTILE_SECONDS = 10  # the window of the live p50/p95
BARS = "▁▂▃▄▅▆▇█"

Progress = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Snapshot:
    """What the live progress line shows at one moment of a run."""

    elapsed: int
    users: int
    rps: float  # over the last 5 whole seconds
    p50_ms: float | None  # over the last PERCENTILE_SECONDS
    p95_ms: float | None
    requests: int
    failures: int
    history: list[int]  # requests per second, oldest first, at most SPARK_SECONDS

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


def snapshot(live: dict[str, Any], now: float | None = None) -> Snapshot:
    """The numbers shown, from the live file's counts and its most recent histograms."""
    from scalectl.loadtest import hdr
    from scalectl.loadtest.rawjson import in_aggregate

    now = time.time() if now is None else now
    current = int(now)

    counted = in_aggregate(live.get("endpoints", {}))
    per_second: dict[int, int] = {}
    for second, per_key in live.get("windows", {}).items():
        per_second[int(second)] = sum(int(v[0]) for k, v in per_key.items() if k in counted)
    started = float(live.get("started_at") or now)
    # The current second is still filling: leave it out of rates and history.
    first = max(int(started), current - SPARK_SECONDS)
    history = [per_second.get(s, 0) for s in range(first, current)]
    recent = history[-5:]
    merged = hdr.new()
    for second in range(current - PERCENTILE_SECONDS, current + 1):
        for key, entry in live.get("windows", {}).get(str(second), {}).items():
            if key in counted:
                hdr.add_encoded(merged, entry[2])
    summary = hdr.Summary(merged)
    hdr.release(merged)
    count = summary.total
    endpoints = live.get("endpoints", {}).items()
    return Snapshot(
        elapsed=int(now - started),
        users=int(live.get("users_now", 0)),
        rps=sum(recent) / len(recent) if recent else 0.0,
        p50_ms=summary.percentile(50) / 1000 if count else None,
        p95_ms=summary.percentile(95) / 1000 if count else None,
        requests=sum(int(e["requests"]) for k, e in endpoints if k in counted),
        failures=sum(int(e["failures"]) for k, e in endpoints if k in counted),
        history=history,
    )


def sparkline(values: list[int]) -> str:
    """`values` as a row of block characters scaled to the largest."""
    top = max(values, default=0)
    if top <= 0:
        return BARS[0] * len(values)
    return "".join(BARS[min(len(BARS) - 1, v * len(BARS) // (top + 1))] for v in values)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def plain_line(s: Snapshot, warmup: float = 0.0) -> str:
    """The progress line for a terminal without live display (CI logs)."""
    phase = " (warm-up)" if s.elapsed < warmup else ""
    return (
        f"t={s.elapsed}s{phase} users={s.users} rps={s.rps:.0f} p50={_ms(s.p50_ms)}ms "
        f"p95={_ms(s.p95_ms)}ms errors={s.failures} ({s.error_rate:.1%}) requests={s.requests}"
    )


@contextmanager
def progress_for(output: Output, run_seconds: int, warmup: float = 0.0) -> Iterator[Progress]:
    """A progress callback for the runner, live or plain depending on the terminal; the
    warm-up's seconds are labelled as such."""
    if not output.interactive:
        last = [0.0]

        def plain(live: dict[str, Any]) -> None:
            now = time.monotonic()
            if now - last[0] >= PLAIN_EVERY:
                last[0] = now
                output.info(plain_line(snapshot(live), warmup))

        yield plain
        return

    from rich.live import Live

    with Live(
        _panel(None, run_seconds), console=output.console, refresh_per_second=2, transient=True
    ) as view:

        def show(live: dict[str, Any]) -> None:
            view.update(_panel(snapshot(live), run_seconds, warmup))

        yield show


def _panel(s: Snapshot | None, run_seconds: int, warmup: float = 0.0) -> Any:
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    table = Table.grid(padding=(0, 2))
    for _ in range(6):
        table.add_column(justify="right")
    table.add_row("elapsed", "users", "rps", "p50 ms", "p95 ms", "errors", style="bold")
    if s is None:
        table.add_row("starting Locust…", "", "", "", "", "")
        return Panel(table, title="scalectl loadtest", title_align="left")
    total = "" if run_seconds >= 24 * 3600 else f"/{run_seconds}s"
    phase = " warm-up" if s.elapsed < warmup else ""
    table.add_row(
        f"{s.elapsed}s{total}{phase}",
        str(s.users),
        f"{s.rps:.0f}",
        _ms(s.p50_ms),
        _ms(s.p95_ms),
        f"{s.failures} ({s.error_rate:.1%})",
    )
    spark = sparkline(s.history)
    peak = max(s.history, default=0)
    body = Group(table, Text(f"rps {spark} peak {peak}/s"))
    return Panel.fit(body, title="scalectl loadtest", title_align="left")
