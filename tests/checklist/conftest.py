from __future__ import annotations

import datetime
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scalectl.checklist import Checklist
from scalectl.checklist.load import validate
from scalectl.checklist.model import ItemResult
from scalectl.checklist.run import verify_item
from scalectl.checklist.verifiers import Context
from scalectl.stack import apikeys
from scalectl.stack.state import load
from scalectl.yamlsource import parse
from tests.helpers.stack import running_stack


@pytest.fixture(scope="session")
def stack() -> Iterator[tuple[Path, Path]]:
    """One real local stack (plan, state_dir) with light traffic, for every module here that
    needs one. test_remote.py runs before test_stack_verifiers.py, whose last tests break
    the stack (and restore what they broke)."""
    with running_stack("checklist") as (plan, state_dir):
        send_traffic(state_dir)
        yield plan, state_dir


def send_traffic(state_dir: Path, rounds: int = 80, posts: bool = True) -> None:
    """Light real traffic straight to each instance, so the SLO check has data to judge."""
    state = load(state_dir)
    assert state is not None
    # A premium key of the stack's pool (`stack up` minted it): /api needs a key, and the
    # free tier's 20 rps would refuse this traffic.
    headers = apikeys.auth_headers(state_dir, "premium")
    assert headers
    for member in state.members:
        if member.kind != "app":
            continue
        with httpx.Client(base_url=str(member.url), timeout=5, headers=headers) as client:
            for i in range(rounds):
                assert client.get("/api/stats").status_code == 200
                if posts and i % 8 == 0:
                    created = client.post(
                        "/api/submissions",
                        json={"title": f"CV {i}", "content": "Python, SQL"},
                    )
                    assert created.status_code == 202, created.text


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Run in a fresh directory: progress (.scalectl/checklists) and relative paths land here."""
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def checklist_file(directory: Path, items: str, name: str = "custom") -> Path:
    """A checklist YAML file with these `items:` (YAML text, indented as a list)."""
    body = textwrap.indent(textwrap.dedent(items).strip(), "  ")
    path = directory / f"{name}.yaml"
    path.write_text(f"version: 1\nname: {name}\ntitle: A custom checklist\nitems:\n{body}\n")
    return path


def one_item(verify: str) -> Checklist:
    """A checklist with a single item verified by `verify` (a YAML flow mapping)."""
    text = "version: 1\nname: one\ntitle: One\nitems:\n  - id: it\n    title: It\n"
    text += f"    verify: {verify}\n"
    return validate(parse(text, "one.yaml"), "one.yaml")


def check(verify: str, ctx: Context) -> ItemResult:
    """Run one verifier the way a checklist run does (errors become a failed item)."""
    return verify_item(one_item(verify).items[0], ctx)


def write_report(
    directory: Path,
    *,
    verdict: str = "pass",
    ended: datetime.datetime | None = None,
    slo_status: str = "pass",
) -> Path:
    """A report.json as `scalectl loadtest` writes it (docs/loadtest.md, version 1)."""
    ended = ended or datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
    started = ended - datetime.timedelta(seconds=60)
    observed = 120.0 if slo_status == "pass" else 480.0
    data = {
        "version": 1,
        "verdict": verdict,
        "reasons": [],
        "meta": {
            "scenario": "mix",
            "host": "http://127.0.0.1:8080",
            "users": 20,
            "run_time": "60s",
            "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ended_at": ended.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "duration_s": 60.0,
        },
        "slos": [
            {
                "name": "global p95_ms <= 300",
                "scope": "global",
                "kind": "run",
                "metric": "p95_ms",
                "comparator": "<=",
                "threshold": 300,
                "observed": observed,
                "passed": slo_status == "pass",
                "status": slo_status,
                "detail": "",
            }
        ],
        "endpoints": [],
        "total": {
            "key": "Aggregated",
            "requests": 6000,
            "failures": 0,
            "error_rate": 0.0,
            "p95_ms": observed,
        },
        "generator": {"processes": 2, "requested_rps": None, "achieved_rps": 100.0},
        "errors": [],
        "timeseries": [],
    }
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "report.json").write_text(json.dumps(data, indent=2))
    return directory / "report.json"
