"""loadtest-report: a recent passing report passes; stale, failed, missing ones fail."""

from __future__ import annotations

import datetime
from pathlib import Path

from scalectl.checklist.verifiers import Context
from tests.checklist.conftest import check, write_report


def test_a_recent_passing_report_passes(tmp_path: Path) -> None:
    path = write_report(tmp_path / "loadtest-report")
    result = check("{kind: loadtest-report}", Context(report_dir=tmp_path / "loadtest-report"))
    assert result.status == "pass", result.evidence
    assert result.evidence[0] == f"{path}: verdict pass, 1 of 1 SLOs pass"
    assert result.evidence[1] == "scenario mix, 6000 requests, p95 120.0 ms, error rate 0.00%"
    assert result.evidence[2].endswith(", 1h ago (max age 7d)")


def test_a_stale_report_fails(tmp_path: Path) -> None:
    old = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=3)
    write_report(tmp_path, ended=old)
    result = check(f"{{kind: loadtest-report, report_dir: {tmp_path}, max_age: 2d}}", Context())
    assert result.status == "fail"
    assert result.evidence[-1] == "the report is stale: 3d old"


def test_a_failed_report_fails(tmp_path: Path) -> None:
    write_report(tmp_path, verdict="fail", slo_status="fail")
    result = check("{kind: loadtest-report}", Context(report_dir=tmp_path))
    assert result.status == "fail"
    assert "  fail: global p95_ms <= 300 (observed 480.0)" in result.evidence
    assert result.evidence[-1] == "the run's verdict is fail, not pass"


def test_no_report_or_not_a_report_fails(tmp_path: Path) -> None:
    missing = check("{kind: loadtest-report}", Context(report_dir=tmp_path))
    assert missing.status == "fail"
    assert missing.evidence[0].startswith(f"{tmp_path / 'report.json'}: no load test report")
    (tmp_path / "report.json").write_text('{"version": 2}')
    other = check("{kind: loadtest-report}", Context(report_dir=tmp_path))
    assert other.evidence == (
        f"{tmp_path / 'report.json'}: not a scalectl report.json (version 1)",
    )


def test_hostile_report_files_fail_in_one_line(tmp_path: Path) -> None:
    # report.json and drill.json are read back from disk: untrusted, never a traceback.
    report = tmp_path / "report.json"
    report.write_text("[" * 100_000 + "]" * 100_000)
    nested = check("{kind: loadtest-report}", Context(report_dir=tmp_path))
    assert nested.status == "fail"
    assert nested.evidence == (f"unreadable report: {report}: not valid JSON (nested too deeply)",)
    report.write_bytes(b"\xff\xfe{}")
    assert "not UTF-8" in check("{kind: loadtest-report}", Context(report_dir=tmp_path)).evidence[0]
    drill = tmp_path / "drill.json"
    for text, evidence in (
        ("[1, 2]", f"{drill}: not a scalectl drill.json (no drills list)"),
        ('{"drills": 5}', f"{drill}: not a scalectl drill.json (no drills list)"),
        (
            '{"drills": [{"name": "overload", "verdict": "pass", "figures": [1]}]}',
            f"{drill}: overload has no valid started_at",
        ),
    ):
        drill.write_text(text)
        result = check(
            f"{{kind: drill, name: overload, run: false, report_dir: {tmp_path}}}", Context()
        )
        assert result.status == "fail" and result.evidence[-1] == evidence, result.evidence
