"""Manual items at a terminal: the installed `scalectl` runs under a pseudo-terminal, a
person answers the prompts, and who answered and when is recorded and reused."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from tests.checklist.conftest import checklist_file

SCALECTL = Path(sys.executable).parent / "scalectl"
ITEMS = """
- id: sign-off
  title: Product owner signed off
  ask: Did the product owner sign off?
- id: on-call
  title: On-call briefed
  ask: Is the on-call engineer briefed?
- id: rollback
  title: Rollback documented
  verify: {kind: rollback-doc, path: RB.md, min_lines: 1}
"""


class Terminal:
    """A child process on a pseudo-terminal: read what it prints, type answers."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k != "CI"}
        env.update({"NO_COLOR": "1", "TERM": "xterm", "COLUMNS": "120", "USER": "nobody-here"})
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env, start_new_session=True
        )
        os.close(slave)
        self.seen = ""
        self.pending = ""

    def _read(self, deadline: float) -> bool:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([self.master], [], [], left)
        if not ready:
            return False
        try:
            data = os.read(self.master, 4096)
        except OSError:  # EIO: the child closed the terminal
            data = b""
        if not data:
            return False
        text = data.decode(errors="replace").replace("\r\n", "\n")
        self.seen += text
        self.pending += text
        return True

    def expect(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.pending:
            if not self._read(deadline):
                raise AssertionError(f"no {text!r} within {timeout}s; output:\n{self.seen}")
        before, _, self.pending = self.pending.partition(text)
        return before + text

    def type(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    def finish(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while self._read(deadline):
            pass
        try:
            return self.proc.wait(max(0.1, deadline - time.monotonic()))
        finally:
            os.close(self.master)
            if self.proc.poll() is None:
                self.proc.kill()


def test_prompts_record_who_and_when_and_resume(tmp_path: Path) -> None:
    path = checklist_file(tmp_path, ITEMS)
    (tmp_path / "RB.md").write_text("# Rollback\nkubectl rollout undo deployment/api\n")
    argv = [str(SCALECTL), "checklist", str(path), "--who", "alice"]
    started = time.time()

    term = Terminal(argv, tmp_path)
    term.expect("? Product owner signed off [sign-off]\n  Did the product owner sign off?\n")
    term.expect("answer [y]es / [n]o / [s]kip: ")
    term.type("y")
    term.expect("note (optional, Enter for none): ")
    term.type("signed in OPS-12")
    term.expect("? On-call briefed [on-call]")
    term.expect("answer [y]es / [n]o / [s]kip: ")
    term.type("maybe")
    term.expect("please answer y, n or s")
    term.expect("answer [y]es / [n]o / [s]kip: ")
    term.type("n")
    term.expect("note (optional, Enter for none): ")
    term.type("")
    term.expect("checklist custom: incomplete, 2 of 3 items pass")
    assert term.finish() == 1
    assert "Product owner signed off" in term.seen and "answered yes by alice at" in term.seen

    saved = json.loads((tmp_path / ".scalectl" / "checklists" / "custom.json").read_text())
    sign_off = saved["items"]["sign-off"]
    assert sign_off["status"] == "pass"
    assert sign_off["answer"]["answer"] == "yes"
    assert sign_off["answer"]["by"] == "alice"
    assert sign_off["answer"]["note"] == "signed in OPS-12"
    assert sign_off["answer"]["source"] == "prompt"
    assert started <= sign_off["answer"]["at"] <= time.time()
    assert saved["items"]["on-call"]["status"] == "fail"

    # Resume: the answered item is not asked again; the refused one is, with its history.
    term = Terminal([str(SCALECTL), "checklist", str(path)], tmp_path)
    asked = term.expect("answer [y]es / [n]o / [s]kip: ")
    assert "[sign-off]" not in asked
    assert "? On-call briefed [on-call]" in asked
    assert "(answered no by alice at " in asked
    term.type("yes")
    term.expect("note (optional, Enter for none): ")
    term.type("")
    term.expect("checklist custom: complete, 3 of 3 items pass")
    assert term.finish() == 0
    assert "sign-off: pass (saved)" in term.seen
    again = json.loads((tmp_path / ".scalectl" / "checklists" / "custom.json").read_text())
    assert again["items"]["on-call"]["answer"]["by"] == "nobody-here"  # $USER without --who


def test_skipping_and_no_input_leave_the_item_failed(tmp_path: Path) -> None:
    path = checklist_file(tmp_path, ITEMS)
    term = Terminal([str(SCALECTL), "checklist", str(path), "--no-input"], tmp_path)
    term.expect("no answer: needs a person")
    assert term.finish() == 1
    assert "answer [y]es" not in term.seen

    term = Terminal([str(SCALECTL), "checklist", str(path)], tmp_path)
    term.expect("answer [y]es / [n]o / [s]kip: ")
    term.type("s")
    term.expect("answer [y]es / [n]o / [s]kip: ")
    term.type("s")
    term.expect("skipped: no answer given")
    assert term.finish() == 1
