"""Running a checklist: exit codes, answers, non-interactive manual items, JSON, and
resuming from saved progress (--recheck, --reset, staleness, changed items)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from scalectl.checklist import load_checklist, run_checklist
from scalectl.checklist.verifiers import Context
from scalectl.errors import ExitCode
from tests.checklist.conftest import checklist_file
from tests.conftest import Result

Cli = Callable[..., Result]

ITEMS = """
- id: rollback
  title: Rollback documented
  verify: {kind: rollback-doc, path: RB.md, min_lines: 1}
- id: sign-off
  title: Product owner signed off
  ask: Did the product owner sign off?
- id: nice-to-have
  title: Optional extra
  required: false
  verify: {kind: rollback-doc, path: EXTRA.md}
"""


@pytest.fixture
def custom(workdir: Path) -> Path:
    (workdir / "RB.md").write_text("# Rollback\nkubectl rollout undo deployment/api\n")
    return checklist_file(workdir, ITEMS)


def answers(directory: Path, text: str) -> Path:
    path = directory / "answers.yaml"
    path.write_text(text)
    return path


def statuses(result: Result) -> dict[str, tuple[str, bool]]:
    return {i["id"]: (i["status"], i["reused"]) for i in json.loads(result.stdout)["items"]}


def test_unanswered_manual_item_fails_when_not_at_a_terminal(cli: Cli, custom: Path) -> None:
    result = cli("checklist", custom, "--json")
    assert result.code == ExitCode.CHECK_FAILED
    payload = json.loads(result.stdout)
    assert payload["ok"] is False
    assert payload["required_failed"] == ["sign-off"]
    sign_off = payload["items"][1]
    assert sign_off["evidence"] == [
        "no answer: needs a person (not at a terminal; give --answers FILE)"
    ]
    assert result.stderr.strip().splitlines()[-1] == (
        "error: checklist custom is incomplete: 1 required item not passed (sign-off)"
    )


def test_answers_file_completes_it_and_optional_items_do_not_gate(
    cli: Cli, custom: Path, workdir: Path
) -> None:
    given = answers(workdir, "sign-off: {answer: yes, by: dana, note: ticket OPS-12}\n")
    result = cli("checklist", custom, "--answers", given, "--json")
    assert result.code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["ok"] is True
    assert statuses(result) == {
        "rollback": ("pass", False),
        "sign-off": ("pass", False),
        "nice-to-have": ("fail", False),
    }
    sign_off = payload["items"][1]
    assert sign_off["answer"]["by"] == "dana"
    assert sign_off["answer"]["source"] == "answers file"
    assert sign_off["evidence"][0].startswith("answered yes by dana at ")
    assert sign_off["evidence"][1] == "note: ticket OPS-12"


def test_a_no_answer_fails_and_who_defaults_to_user(cli: Cli, custom: Path, workdir: Path) -> None:
    given = answers(workdir, "sign-off: no\n")
    result = cli("checklist", custom, "--answers", given, "--json", env={"USER": "sam"})
    assert result.code == ExitCode.CHECK_FAILED
    item = json.loads(result.stdout)["items"][1]
    assert (item["status"], item["answer"]["answer"], item["answer"]["by"]) == ("fail", "no", "sam")


def test_resume_reuses_passes_recheck_and_reset_do_not(
    cli: Cli, custom: Path, workdir: Path
) -> None:
    given = answers(workdir, "sign-off: yes\n")
    first = cli("checklist", custom, "--answers", given, "--json")
    assert first.code == 0
    progress = workdir / ".scalectl" / "checklists" / "custom.json"
    saved = json.loads(progress.read_text())
    assert saved["items"]["rollback"]["status"] == "pass"

    # The document goes away: a resumed run trusts the recent pass and says so.
    (workdir / "RB.md").unlink()
    resumed = cli("checklist", custom, "--json")
    assert resumed.code == 0, resumed.stdout
    assert statuses(resumed) == {
        "rollback": ("pass", True),
        "sign-off": ("pass", True),
        "nice-to-have": ("fail", False),  # failures are always checked again
    }
    text = cli("checklist", custom)
    assert "rollback: pass (saved)" in text.stdout

    rechecked = cli("checklist", custom, "--recheck", "--answers", given, "--json")
    assert rechecked.code == ExitCode.CHECK_FAILED
    assert statuses(rechecked)["rollback"] == ("fail", False)

    (workdir / "RB.md").write_text("# back\n")
    cli("checklist", custom, "--answers", given)  # all pass again
    (workdir / "RB.md").unlink()
    reset = cli("checklist", custom, "--reset", "--json")
    assert reset.code == ExitCode.CHECK_FAILED
    assert statuses(reset) == {
        "rollback": ("fail", False),
        "sign-off": ("fail", False),  # its answer went with the progress
        "nice-to-have": ("fail", False),
    }


def test_stale_passes_and_changed_items_run_again(custom: Path, workdir: Path) -> None:
    checklist = load_checklist(str(custom))
    progress = workdir / "progress.json"
    clock = [1_000_000.0]
    ctx = Context(root=workdir, now=lambda: clock[0])
    first = run_checklist(checklist, ctx, progress=progress)
    assert first.items[0].status == "pass" and not first.items[0].reused

    clock[0] += 3600  # within valid_for (24h): reused
    assert run_checklist(checklist, ctx, progress=progress).items[0].reused
    clock[0] += 86400  # past it: checked again
    again = run_checklist(checklist, ctx, progress=progress)
    assert not again.items[0].reused and again.items[0].checked_at == clock[0]

    changed = load_checklist(
        str(checklist_file(workdir, ITEMS.replace("min_lines: 1", "min_lines: 3")))
    )
    redone = run_checklist(changed, ctx, progress=progress)
    # The item changed, so its fresh pass does not count: it is checked again, and fails.
    assert not redone.items[0].reused
    assert redone.items[0].evidence[-1] == "RB.md is too short: 2 lines, need 3"


def test_corrupt_progress_is_bad_input_and_reset_recovers(
    cli: Cli, custom: Path, workdir: Path
) -> None:
    progress = workdir / ".scalectl" / "checklists" / "custom.json"
    progress.parent.mkdir(parents=True)
    progress.write_text("{not json")
    result = cli("checklist", custom)
    assert result.code == ExitCode.BAD_INPUT
    assert "unreadable progress" in result.stderr and "--reset" in result.stderr
    assert cli("checklist", custom, "--reset").code == ExitCode.CHECK_FAILED  # runs again


def test_markdown_export_for_a_pull_request(cli: Cli, custom: Path, workdir: Path) -> None:
    given = answers(workdir, "sign-off: {answer: yes, by: dana}\n")
    result = cli("checklist", custom, "--answers", given, "--markdown", workdir / "pr.md")
    assert result.code == 0
    text = (workdir / "pr.md").read_text()
    lines = text.splitlines()
    assert lines[0] == "## ✅ scalectl checklist custom: complete (2 of 3 items pass)"
    assert lines[4:6] == ["| | item | evidence | checked |", "|---|---|---|---|"]
    assert lines[6].startswith("| ✅ | **Rollback documented** (`rollback`) | RB.md: 2 non-blank")
    assert lines[7].startswith(
        "| ✅ | **Product owner signed off** (`sign-off`) | answered yes by dana"
    )
    assert lines[8].startswith(
        "| ⚠️ | **Optional extra** (`nice-to-have`) | no rollback document: looked for EXTRA.md"
    )
    assert f"wrote {workdir / 'pr.md'}" in result.stdout


def test_a_missing_plan_is_bad_input_before_anything_runs(
    cli: Cli, custom: Path, workdir: Path
) -> None:
    result = cli("checklist", custom, "--plan", workdir / "nope.yaml")
    assert result.code == ExitCode.BAD_INPUT
    assert result.stderr == f"error: --plan {workdir / 'nope.yaml'}: no such file\n"
    assert result.stdout == ""
    assert not (workdir / ".scalectl").exists()  # no item ran, no progress was saved


def test_output_paths_are_checked_before_anything_runs(
    cli: Cli, custom: Path, workdir: Path
) -> None:
    (workdir / "a-file").write_text("")
    result = cli(
        "checklist", custom, "--progress-dir", "/proc/scalectl-nope",
        "--markdown", workdir / "missing" / "pr.md",
    )  # fmt: skip
    assert result.code == ExitCode.BAD_INPUT
    assert result.stderr.splitlines() == [
        "error: 2 problems in the input",
        "--progress-dir /proc/scalectl-nope: cannot write in /proc (No such file or directory)",
        f"--markdown {workdir / 'missing' / 'pr.md'}: no such directory {workdir / 'missing'}",
    ]
    assert result.stdout == ""
    as_file = cli("checklist", custom, "--progress-dir", workdir / "a-file")
    assert as_file.stderr == f"error: --progress-dir {workdir / 'a-file'}: not a directory\n"
    as_dir = cli("checklist", custom, "--markdown", workdir)
    assert as_dir.stderr == f"error: --markdown {workdir}: is a directory, expected a file path\n"
    assert not (workdir / ".scalectl").exists()


def test_help_of_the_group_shows_the_run_options(
    cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    result = cli("checklist", "--help")
    assert result.code == 0
    result.stdout = capsys.readouterr().out  # click writes help to the process's stdout
    assert "Without a command, scalectl checklist means scalectl checklist run" in " ".join(
        result.stdout.split()
    )
    for option in ("--answers", "--plan", "--progress-dir", "--markdown", "--recheck"):
        assert f"  {option} " in result.stdout, option
    assert "  list " in result.stdout  # the other command is still listed
