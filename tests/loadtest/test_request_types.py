"""Requests that are not HTTP (a custom client's `request` events: grpc, sql, manual) count in
the run's aggregate, its errors, its time series and its verdict, as in Locust's own
statistics; an event marked `scalectl_aggregate: False` is gated by its name only."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from scalectl.errors import ExitCode
from tests.conftest import Result, fixture_path
from tests.helpers.input_files import slo_file
from tests.loadtest.server import serve

Cli = Callable[..., Result]
CUSTOM = fixture_path("locust", "custom_client.py")
pytestmark = pytest.mark.stack


def test_custom_request_types_count_in_the_aggregate_and_the_verdict(
    cli: Cli, tmp_path: Path
) -> None:
    slo = slo_file(tmp_path, "version: 1\nglobal: {error_rate: 0.1}\n")
    with serve() as url:
        result = cli(
            "loadtest", CUSTOM, "-H", url, "-u", "4", "-r", "4", "-t", "4s",
            "--slo", slo, "--report-dir", tmp_path / "report",
        )  # fmt: skip
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    endpoints = {e["key"]: e for e in report["endpoints"]}
    counted = [endpoints[k]["requests"] for k in ("GET /known", "sql select", "manual upload")]
    assert all(n > 0 for n in counted), endpoints
    total = report["total"]
    # Before: only HTTP methods counted, so 'manual' failures were invisible and it passed.
    assert total["requests"] == sum(counted)
    assert total["failures"] == endpoints["manual upload"]["requests"]
    assert endpoints["JOB done"]["requests"] > 0  # measured and shown, not aggregated
    assert result.code == ExitCode.CHECK_FAILED, result.stdout + result.stderr
    assert report["verdict"] == "fail"
    with open(tmp_path / "report" / "timeseries.csv") as handle:
        rows = list(csv.DictReader(handle))
    per_second: dict[str, dict[str, int]] = {}
    for row in rows:
        per_second.setdefault(row["t"], {})[row["endpoint"]] = int(row["requests"])
    for t, seen in per_second.items():
        parts = sum(n for key, n in seen.items() if key not in ("Aggregated", "JOB done"))
        assert seen["Aggregated"] == parts, (t, seen)
