"""Checklist files: the shipped ones load, a user's file is validated up front with
file:line:col problems (unknown kinds and keys with a did-you-mean), answers files too."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from scalectl.checklist import SHIPPED, load_answers, load_checklist
from scalectl.checklist.verifiers import REGISTRY
from scalectl.errors import ExitCode, InputError
from tests.checklist.conftest import checklist_file
from tests.conftest import Result

Cli = Callable[..., Result]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_checklists_load(name: str) -> None:
    checklist = load_checklist(name)
    assert checklist.name == name
    assert checklist.source == f"shipped: {name}"
    assert all(i.spec.kind in {*REGISTRY, "manual"} for i in checklist.items)


def test_shipped_checklists_cover_the_issue() -> None:
    items = {name: [i.spec.title for i in load_checklist(name).items] for name in SHIPPED}
    assert items == {
        "pre": [
            "Load testing completed and passed",
            "Benchmarks established",
            "Rendered configs pass `scalectl plan --check`",
            "Monitoring and alerting configured",
            "Auto-scaling rules defined",
            "Backup and recovery tested",
        ],
        "deploy": [
            "Blue-green or rolling deployment configured",
            "Load balancer configured",
            "Health checks implemented",
            "Graceful shutdown tested",
            "Rolling restart loses no request",
            "Rollback documented",
        ],
        "post": [
            "Monitoring active",
            "The series the alerts use are exposed on /metrics",
            "Alert thresholds configured",
            "Auto-scaling working",
            "Error rates and response times within targets",
        ],
    }


def test_every_verifier_kind_is_used_by_a_shipped_checklist() -> None:
    used = {i.spec.kind for name in SHIPPED for i in load_checklist(name).items}
    # The deploy checklist tests graceful shutdown with the drill (users behind nginx see
    # no failure); the single-instance `graceful-shutdown` kind is there for your own lists.
    assert set(REGISTRY) - {"graceful-shutdown"} <= used


def test_checks_of_the_live_stack_are_not_reused_unless_told(tmp_path: Path) -> None:
    path = checklist_file(
        tmp_path,
        """
        - {id: health, title: H, verify: {kind: health}}
        - {id: drill, title: D, verify: {kind: drill, name: rolling-restart}}
        - {id: kept, title: K, verify: {kind: health}, valid_for: 10m}
        - {id: doc, title: R, verify: {kind: rollback-doc}}
        - {id: asked, title: A, ask: Sure}
        - {id: quick, title: Q, ask: Sure, valid_for: 500ms}
        """,
    )
    checklist = load_checklist(str(path))
    assert {i.spec.id: (i.live, i.valid_for) for i in checklist.items} == {
        "health": (True, 0.0),
        "drill": (True, 0.0),
        "kept": (True, 600.0),
        "doc": (False, 86400.0),
        "asked": (False, 86400.0),
        "quick": (False, 0.5),
    }
    live = {kind for kind, verifier in REGISTRY.items() if verifier.live}
    assert live == {
        "health",
        "slo-live",
        "prometheus",
        "metrics-exposed",
        "graceful-shutdown",
        "backup-restore",
        "drill",
    }


def test_every_problem_at_once_with_file_line_and_did_you_mean(cli: Cli, tmp_path: Path) -> None:
    path = checklist_file(
        tmp_path,
        """
        - id: loadtest
          title: Load test
          verify: {kind: loadtest-reprot, max_age: 2d}
        - id: docs
          title: Docs
          verify:
            kind: rollback-doc
            pathh: ROLLBACK.md
            min_lines: -1
        - id: docs
          title: Again
          ask: Sure?
          requierd: false
        - id: both
          title: Both
        - id: fine
          title: x
          valid_for: forever
          ask: y
        """,
    )
    result = cli("checklist", path, "--progress-dir", tmp_path / "progress")
    assert result.code == ExitCode.BAD_INPUT
    known = ", ".join(REGISTRY)
    assert result.stderr.splitlines() == [
        f"error: {path}: 7 problems",
        f"{path}:7:20 items[0].verify.kind: unknown verifier 'loadtest-reprot'; "
        f"did you mean 'loadtest-report'? (known: {known})",
        f"{path}:12:7 items[1].verify.pathh: unknown key; did you mean 'path'?",
        f"{path}:13:18 items[1].verify.min_lines: must be greater than or equal to 1",
        f"{path}:14:9 items[2].id: duplicate id 'docs' (first at line 8)",
        f"{path}:17:5 items[2].requierd: unknown key; did you mean 'required'?",
        f"{path}:18:5 items[3]: an item needs exactly one of 'verify' (automatic) or 'ask' "
        "(manual)",
        f"{path}:22:16 items[4].valid_for: expected a duration such as 500ms, 5s, 2m, 1h30m or "
        "7d, got 'forever'",
    ]
    assert not (tmp_path / "progress").exists()


def test_a_verify_block_needs_a_kind(tmp_path: Path) -> None:
    path = checklist_file(tmp_path, "- {id: a, title: A, verify: {max_age: 1d}}")
    with pytest.raises(InputError) as caught:
        load_checklist(str(path))
    assert caught.value.lines == (
        f"{path}:5:31 items[0].verify.kind: required: one of {', '.join(REGISTRY)}",
    )


def test_parameter_types_are_checked(tmp_path: Path) -> None:
    path = checklist_file(
        tmp_path,
        """
        - {id: a, title: A, verify: {kind: plan-check, tools: [nginx -t, gixxy]}}
        - {id: b, title: B, verify: {kind: alert-rules, source: stack, dir: rendered}}
        """,
    )
    with pytest.raises(InputError) as caught:
        load_checklist(str(path))
    assert caught.value.lines[0].startswith(f"{path}:5:68 items[0].verify.tools[1]: must be ")
    assert caught.value.lines[1] == (
        f"{path}:6:31 items[1].verify: source: stack uses the stack's own plan and rendered "
        "directory"
    )


def test_unknown_checklist_name_suggests_a_shipped_one(cli: Cli) -> None:
    result = cli("checklist", "prr")
    assert result.code == ExitCode.BAD_INPUT
    assert result.stderr.strip() == (
        "error: no checklist named 'prr'; did you mean 'pre'? "
        "(shipped: pre, deploy, post; or give a checklist YAML file)"
    )


def test_missing_and_malformed_files(cli: Cli, tmp_path: Path) -> None:
    assert cli("checklist", tmp_path / "nope.yaml").stderr.strip() == (
        f"error: {tmp_path / 'nope.yaml'}: no such file"
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nitems: [\n")
    result = cli("checklist", broken)
    assert result.code == ExitCode.BAD_INPUT
    assert result.stderr.startswith(f"error: {broken}:3:1: malformed YAML")


def test_answers_file_is_validated(tmp_path: Path) -> None:
    checklist = load_checklist("pre")
    answers = tmp_path / "answers.yaml"
    answers.write_text(
        "benchmarks-establisht: yes\n"
        "loadtest-passed: yes\n"
        "benchmarks-established: {answer: maybe, by: ''}\n"
    )
    with pytest.raises(InputError) as caught:
        load_answers(answers, checklist)
    assert caught.value.lines == (
        f"{answers}:1:1 benchmarks-establisht: no item 'benchmarks-establisht' in checklist pre; "
        "did you mean 'benchmarks-established'?",
        f"{answers}:2:1 loadtest-passed: verified automatically; only items with 'ask' take "
        "answers",
        f"{answers}:3:34 benchmarks-established.answer: must be yes or no (true or false)",
        f"{answers}:3:45 benchmarks-established.by: must have at least 1 character",
    )


def test_answers_and_checklists_are_worded_for_people(tmp_path: Path) -> None:
    answers = tmp_path / "answers.yaml"
    answers.write_text("benchmarks-established: maybe\n")
    with pytest.raises(InputError) as caught:
        load_answers(answers, load_checklist("pre"))
    assert caught.value.lines == (
        f"{answers}:1:25 benchmarks-established: expected yes, no or {{answer: yes|no, by: "
        "NAME, note: TEXT}, got 'maybe'",
    )
    path = tmp_path / "odd.yaml"
    path.write_text(
        "version: 1\nname: Odd Name\ntitle: x\nitems:\n"
        "  - {id: Bad_id, title: t, verify: 5}\n"
        "  - {id: b, title: t, required: maybe, ask: q}\n"
    )
    with pytest.raises(InputError) as caught:
        load_checklist(str(path))
    assert caught.value.lines == (
        f"{path}:2:7 name: must be lowercase letters, digits, '_' and '-', starting with a "
        "letter or digit",
        f"{path}:5:10 items[0].id: must be lowercase letters, digits and dashes, starting with "
        "a letter or digit",
        f"{path}:5:36 items[0].verify: must be a mapping",
        f"{path}:6:33 items[1].required: must be yes or no (true or false)",
    )


def test_answers_shorthand(tmp_path: Path) -> None:
    answers = tmp_path / "answers.yaml"
    answers.write_text("benchmarks-established: yes\n")
    loaded = load_answers(answers, load_checklist("pre"))
    assert loaded["benchmarks-established"].answer is True
    assert loaded["benchmarks-established"].by is None


def test_list_shows_items_and_validates_files(cli: Cli, tmp_path: Path) -> None:
    result = cli("checklist", "list", "--json")
    assert result.code == 0
    payload = json.loads(result.stdout)
    assert [c["name"] for c in payload["checklists"]] == list(SHIPPED)
    assert set(payload["kinds"]) == set(REGISTRY)
    bad = checklist_file(tmp_path, "- {id: a, title: A, ask: ok, extra: 1}")
    wrong = cli("checklist", "list", bad)
    assert wrong.code == ExitCode.BAD_INPUT
    assert f"{bad}:5:32 items[0].extra: unknown key" in wrong.stderr


def test_durations_in_parameters_use_the_one_grammar(tmp_path: Path) -> None:
    path = checklist_file(
        tmp_path,
        """
        - {id: a, title: A, verify: {kind: health, timeout: 1500ms}}
        - {id: b, title: B, verify: {kind: prometheus, wait: 1m30s, timeout: 2}}
        - {id: c, title: C, verify: {kind: loadtest-report, max_age: 1d12h}, valid_for: 0}
        """,
    )
    a, b, c = load_checklist(str(path)).items
    assert a.params is not None and a.params.model_dump()["timeout"] == 1.5
    assert b.params is not None and b.params.model_dump()["wait"] == 90.0
    assert c.params is not None and c.params.model_dump()["max_age"] == 36 * 3600.0
    assert c.valid_for == 0.0  # never reused
