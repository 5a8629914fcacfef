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
