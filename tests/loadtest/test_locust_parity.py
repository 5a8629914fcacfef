"""Locust parity: patterns from Locust's own examples (tests/fixtures/locust/parity/), each run
through plain `python -m locust --headless --json` and through `scalectl loadtest` with the
same users, spawn rate, run time, tags and locustfile arguments, side by side, each against
its own server. Compared: the endpoint set (request types and names), request counts,
failure ratios and the run's length, within the tolerances below (docs/loadtest.md, "Locust
parity")."""

from __future__ import annotations

import json
import math
import os
import random
import socket
import socketserver
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xmlrpc.server import SimpleXMLRPCServer

import pytest

from scalectl.errors import ExitCode
from tests.conftest import Result, fixture_path
from tests.helpers.servers import running
from tests.loadtest.server import no_locust_left, serve

Cli = Callable[..., Result]
PARITY = fixture_path("locust", "parity")
pytestmark = pytest.mark.stack

# Locust arms its -t timer on gevent's cached loop clock, stale since `import locust` in plain
# Locust (scalectl's plugin refreshes it): a plain "-t 5s" run sends for 5 s minus Locust's
# start-up, about 0.7 s on a quiet machine and over 3 s on a busy one. Counts are therefore
# compared per second of each side's own run (plain: first request to last, from --json;
# scalectl: meta.duration_s). Per endpoint, tasks are picked at random, so a count is
# binomial: 3 standard deviations of the difference (3 * sqrt(a + b)), plus 20% for timing
# (stopping mid-wait, a loaded machine) and 2.
COUNT_RELATIVE, COUNT_SIGMAS, COUNT_ABSOLUTE = 0.20, 3.0, 2
# All requests together are not random, only timed: 20% plus 5.
TOTAL_ABSOLUTE = 5
# Failure ratios per endpoint: the failures are deterministic (every 10th /flaky, every
# other call, always), so a ratio differs only by where each run cut its cycle: 1/n on each
# side, plus 2 points. All requests together mix endpoints at random: 3 standard deviations.
RATIO_POINTS = 0.02
# Run length: plain Locust's first to last request against scalectl's test_start to
# test_stop, at most a second apart where the run ends by itself (a shape, runner.quit). Under
# -t, scalectl's run is -t (within SHORT_BY, LATE_BY) and plain Locust's may be shorter.
LENGTH_SECONDS = 1.0
SHORT_BY, LATE_BY = 0.3, 0.8
# All users at once: plain Locust's run may be short (above), and a ramp would take part of it.
SPAWN_RATE = "50"


@dataclass(frozen=True)
class Case:
    """One locustfile pattern and how both sides run it."""

    locustfile: str
    endpoints: frozenset[str]  # "TYPE name", as both Locust and report.json key them
    users: int = 3
    run_time: str = "5s"
    ends_itself: bool = False  # a shape or runner.quit ends it, not -t
    tags: tuple[str, ...] = ()
    locust_args: tuple[str, ...] = ()  # plain Locust: as they are; scalectl: after --
    processes: int = 1
    xmlrpc: bool = False


CASES = {
    # -u, -r and -t do not apply to a shape; its 4 s stages do. Two processes on both sides.
    "shape-stages": Case(
        "stages.py", frozenset({"GET /fast", "GET /flaky"}), users=20, run_time="2s",
        ends_itself=True, processes=2,
    ),
    "custom-client-xmlrpc": Case(
        "xmlrpc_client.py",
        frozenset({"xmlrpc get_time", "xmlrpc get_random_number", "xmlrpc refuse"}),
        xmlrpc=True,
    ),
    "manual-stats-reporting": Case(
        "manual_report.py",
        frozenset({"manual succeeding", "manual every_other", "manual failing"}),
    ),
    "command-line-argument": Case(
        "command_line_argument.py",
        frozenset({"GET /known parity"}),
        locust_args=("--target-path", "/known", "--label", "parity", "Reader"),
    ),
    "checker-runner-quit": Case(
        "checker.py", frozenset({"GET /fast", "GET /flaky"}), run_time="20s", ends_itself=True
    ),
    "tasksets": Case(
        "tasksets.py", frozenset({"GET /item/[n]", "GET /catalogue", "GET /cart", "GET /pay"})
    ),
    "events": Case("events.py", frozenset({"GET /fast"}), processes=2),
    "tags": Case(
        "tags.py",
        frozenset({"GET /list", "GET /admin/users"}),
        tags=("read", "admin"),
        locust_args=("--exclude-tags", "slow"),
    ),
}  # fmt: skip


@dataclass
class Side:
    """What one run measured: per endpoint (requests, failures), its length, hook records."""

    endpoints: dict[str, tuple[int, int]]
    length_s: float
    events: dict[str, int]


class _RpcServer(socketserver.ThreadingMixIn, SimpleXMLRPCServer):
    daemon_threads = True


def _refuse() -> None:
    raise ValueError("refused")  # the client sees a Fault


@contextmanager
def serve_xmlrpc() -> Iterator[str]:
    """A tiny XML-RPC server for the custom-client case, as the example's own server.py."""
    server = _RpcServer(("127.0.0.1", 0), logRequests=False)
    server.register_function(time.time, "get_time")
    server.register_function(random.randint, "get_random_number")
    server.register_function(_refuse, "refuse")
    with running(server) as port:
        yield f"http://127.0.0.1:{port}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_plain(case: Case, host: str, events_out: Path) -> subprocess.Popen[str]:
    """Plain Locust, headless, its per-endpoint statistics as JSON on stdout."""
    argv = [
        sys.executable, "-m", "locust", "-f", str(PARITY / case.locustfile), "--headless",
        "-u", str(case.users), "-r", SPAWN_RATE, "-t", case.run_time, "-H", host,
        "--json", "--only-summary", "--loglevel", "WARNING",
    ]  # fmt: skip
    if case.tags:
        argv += ["--tags", *case.tags]
    if case.processes > 1:
        # Locust's default master port is shared by the whole machine: take a free one.
        port = str(_free_port())
        argv += ["--processes", str(case.processes), "--master-bind-host", "127.0.0.1"]
        argv += ["--master-bind-port", port, "--master-port", port]
    return subprocess.Popen(
        [*argv, *case.locust_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=PARITY,
        env={**os.environ, "EVENTS_OUT": str(events_out)},
    )


def finish_plain(proc: subprocess.Popen[str], events_out: Path) -> Side:
    out, err = proc.communicate(timeout=60)
    entries = _master_statistics(out)
    # Nothing at all when its stale -t ran out during start-up: a machine too busy to compare.
    assert entries, err[-2000:]
    endpoints = {
        f"{e['method']} {e['name']}": (e["num_requests"], e["num_failures"]) for e in entries
    }
    length = max(e["last_request_timestamp"] for e in entries) - min(
        e["start_time"] for e in entries
    )
    return Side(endpoints, length, _events(events_out))


def run_scalectl(cli: Cli, case: Case, host: str, report_dir: Path, events_out: Path) -> Side:
    args: list[str | Path] = [
        "loadtest", PARITY / case.locustfile, "-H", host, "-u", str(case.users),
        "-r", SPAWN_RATE, "-t", case.run_time, "--processes", str(case.processes),
        "--report-dir", report_dir,
    ]  # fmt: skip
    if case.tags:
        args += ["--tags", *case.tags]
    if case.locust_args:
        args += ["--", *case.locust_args]
    result = cli(*args, env={"EVENTS_OUT": str(events_out)})
    assert result.code in (ExitCode.OK, ExitCode.INCONCLUSIVE), result.stdout + result.stderr
    report = json.loads((report_dir / "report.json").read_text())
    if result.code == ExitCode.INCONCLUSIVE:  # only a generator short of CPU, on a busy machine
        assert report["generator"]["limited_by"], report["reasons"]
    endpoints = {
        e["key"]: (e["requests"], e["failures"])
        for e in report["endpoints"]
        if e["key"] != "Aggregated"
    }
    return Side(endpoints, report["meta"]["duration_s"], _events(events_out))


def _master_statistics(out: str) -> list[dict[str, Any]]:
    """The master's --json document: with --processes, each forked worker prints its own,
    empty one on the same stdout."""
    decoder, documents, at = json.JSONDecoder(), [], 0
    while at < len(out.rstrip()):
        document, at = decoder.raw_decode(out, at)
        documents.append(document)
        at += len(out[at:]) - len(out[at:].lstrip())
    filled = [d for d in documents if d]
    assert len(filled) <= 1, out[-2000:]
    return filled[0] if filled else []


def _events(path: Path) -> dict[str, int]:
    return json.loads(path.read_text()) if path.exists() else {}


@contextmanager
def target(case: Case) -> Iterator[str]:
    if case.xmlrpc:
        with serve_xmlrpc() as url:
            yield url
    else:
        with serve() as url:
            yield url


def run_both(cli: Cli, case: Case, tmp_path: Path) -> tuple[Side, Side]:
    """Both sides at once, each against its own server: half the wall time, and the servers'
    deterministic failures count each side's own requests."""
    with target(case) as plain_host, target(case) as our_host:
        proc = start_plain(case, plain_host, tmp_path / "plain-events.json")
        try:
            ours = run_scalectl(cli, case, our_host, tmp_path / "report", tmp_path / "events.json")
            plain = finish_plain(proc, tmp_path / "plain-events.json")
        finally:
            proc.kill() if proc.poll() is None else None
        assert no_locust_left(plain_host, our_host)
    return plain, ours


def _counts_close(a: int, b: float, *, total: bool = False) -> bool:
    if total:
        return abs(a - b) <= COUNT_RELATIVE * max(a, b) + TOTAL_ABSOLUTE
    noise = COUNT_SIGMAS * math.sqrt(a + b)
    return abs(a - b) <= COUNT_RELATIVE * max(a, b) + noise + COUNT_ABSOLUTE


def _ratio(counts: tuple[int, int]) -> float:
    requests, failures = counts
    return failures / requests if requests else 0.0


def _ratios_close(a: tuple[int, int], b: tuple[int, int], *, total: bool = False) -> bool:
    if total:
        p = (a[1] + b[1]) / max(a[0] + b[0], 1)
        slack = 3 * math.sqrt(p * (1 - p) * (1 / max(a[0], 1) + 1 / max(b[0], 1)))
    else:
        slack = 1 / max(a[0], 1) + 1 / max(b[0], 1)
    return abs(_ratio(a) - _ratio(b)) <= RATIO_POINTS + slack


def _total(side: Side) -> tuple[int, int]:
    return sum(n for n, _ in side.endpoints.values()), sum(f for _, f in side.endpoints.values())


@pytest.mark.parametrize("name", list(CASES))
def test_scalectl_measures_what_plain_locust_measures(cli: Cli, tmp_path: Path, name: str) -> None:
    case = CASES[name]
    plain, ours = run_both(cli, case, tmp_path)
    summary = f"plain={plain} scalectl={ours}"
    print(f"\n{name}: {summary}")  # the figures behind docs/loadtest.md's tolerances (-s)
    assert set(plain.endpoints) == case.endpoints, summary
    assert set(ours.endpoints) == case.endpoints, summary
    # Ours counted per second of plain Locust's run (the two can differ in length, above).
    scale = plain.length_s / ours.length_s
    for key in case.endpoints:
        assert _counts_close(plain.endpoints[key][0], ours.endpoints[key][0] * scale), (
            key,
            summary,
        )
        assert _ratios_close(plain.endpoints[key], ours.endpoints[key]), (key, summary)
    assert _counts_close(_total(plain)[0], _total(ours)[0] * scale, total=True), summary
    assert _ratios_close(_total(plain), _total(ours), total=True), summary
    if case.ends_itself:
        assert abs(plain.length_s - ours.length_s) <= LENGTH_SECONDS, summary
    else:
        asked = float(case.run_time.removesuffix("s"))
        assert asked - SHORT_BY <= ours.length_s <= asked + LATE_BY, summary
        assert plain.length_s <= ours.length_s + LENGTH_SECONDS, summary
    if name == "events":
        # The locustfile's own hooks fired alike, and its request listener (its counts
        # shipped from the workers) saw every request its side's statistics did.
        for side in (plain, ours):
            assert side.events["test_starts"] == side.events["test_stops"] == 1, summary
            assert side.events["requests"] == _total(side)[0], summary
            assert side.events["content_length"] == 3 * _total(side)[0], summary  # "ok\n"
