"""The checklist's `drill` verifier reading a drill.json: verdict, age, and missing drills."""

from __future__ import annotations

import json
import typing
from pathlib import Path

from scalectl.checklist.verifiers.base import Context
from scalectl.checklist.verifiers.drill import DrillName, DrillParams, check_drill
from scalectl.drill.catalog import DRILLS

NOW = 1_800_000_000.0


def write(directory: Path, verdict: str, started: str = "2027-01-15T08:00:00+00:00") -> None:
    directory.mkdir(parents=True, exist_ok=True)
    drill = {
        "name": "rolling-restart",
        "verdict": verdict,
        "started_at": started,
        "figures": [
            {"name": "failed_requests", "value": 3 if verdict == "fail" else 0, "unit": "requests",
             "comparator": "<=", "threshold": 0, "status": verdict, "detail": "of 900"},
        ],
    }  # fmt: skip
    (directory / "drill.json").write_text(json.dumps({"version": 1, "drills": [drill]}))


def check(tmp_path: Path, **params: typing.Any) -> typing.Any:
    ctx = Context(root=tmp_path, now=lambda: NOW)
    return check_drill(DrillParams(name="rolling-restart", run=False, **params), ctx)


def test_a_recent_pass_is_evidence(tmp_path: Path) -> None:
    write(tmp_path / "drill-report", "pass")
    outcome = check(tmp_path, max_age=86400 * 400)
    assert outcome.passed
    assert outcome.evidence[1] == "  pass: failed_requests 0 requests (<= 0) of 900"


def test_fail_stale_and_missing_are_not(tmp_path: Path) -> None:
    write(tmp_path / "drill-report", "fail")
    failed = check(tmp_path, max_age=86400 * 400)
    assert not failed.passed and failed.evidence[-1] == "the drill's verdict is fail, not pass"
    write(tmp_path / "old", "pass", started="2020-01-01T00:00:00+00:00")
    stale = check(tmp_path, report_dir="old")
    assert not stale.passed and "stale" in stale.evidence[-1]
    missing = check(tmp_path, report_dir="nowhere")
    assert not missing.passed and "no drill report" in missing.evidence[0]


def test_every_drill_can_be_named_in_a_checklist() -> None:
    assert set(typing.get_args(DrillName)) == set(DRILLS)
