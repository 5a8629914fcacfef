"""Run one corpus case (tests/hostile/corpus.py) through the real CLI and judge it."""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

from scalectl.cli import run
from tests.conftest import tree
from tests.hostile.corpus import Case

SECRET = b"sentinel: never read, written or deleted\n"
EXPECTED_CODES = frozenset({0, 1, 2, 4})  # anything else is a crash (3: internal error)


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str
    problems: tuple[str, ...]  # empty when the case behaved as the corpus says

    @property
    def crashed(self) -> bool:
        text = self.stdout + self.stderr
        return self.code not in EXPECTED_CODES or "Traceback" in text or "internal error" in text


def _fill(text: str, places: dict[str, str]) -> str:
    for key, value in places.items():
        text = text.replace("{" + key + "}", value)
    return text


def run_case(case: Case, base: Path) -> Outcome:
    """Run `case` with inputs under `base`/in, --out `base`/out and a sentinel `base`/s."""
    inputs, out, sentinel = base / "in", base / "out", base / "s"
    inputs.mkdir(parents=True, exist_ok=True)
    sentinel.mkdir(exist_ok=True)
    (sentinel / "victim.txt").write_bytes(SECRET)
    for name, content in case.files.items():
        path = inputs / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    if case.setup is not None:
        case.setup(base)
    places = {"d": str(inputs), "out": str(out), "s": str(sentinel)}
    before_out = _snapshot(out)
    before_all = _outside(base, out)
    stdout, stderr = io.StringIO(), io.StringIO()
    environ = {k: v for k, v in os.environ.items() if k != "CI"} | {"NO_COLOR": "1"}
    # A crash writes its log under XDG_STATE_HOME: beside the case, not in the user's home.
    environ["XDG_STATE_HOME"] = str(base.parent / f"{base.name}-state")
    code = run([_fill(a, places) for a in case.argv], environ=environ, stdout=stdout, stderr=stderr)
    outcome = Outcome(code, stdout.getvalue(), stderr.getvalue(), ())
    problems = list(_judge(case, outcome, places))
    if tree(sentinel) != {"victim.txt": SECRET}:
        problems.append("the sentinel directory outside --out changed")
    if _outside(base, out) != before_all:
        problems.append("a file outside --out was written or deleted")
    if code != 0 and _snapshot(out) != before_out:
        problems.append("partial output: --out changed on refusal")
    return Outcome(code, outcome.stdout, outcome.stderr, tuple(problems))


def _judge(case: Case, outcome: Outcome, places: dict[str, str]) -> list[str]:
    problems = []
    if outcome.code != case.code:
        problems.append(f"exit {outcome.code}, expected {case.code}")
    if outcome.crashed:
        problems.append("crashed (traceback or internal error)")
    expect = _fill(case.expect, places)
    if expect and expect not in outcome.stderr:
        problems.append(f"stderr lacks {expect!r}")
    if case.field is not None:
        files = "|".join(re.escape(str(Path(places["d"]) / n)) for n in case.files) or "[^:]+"
        located = re.compile(rf"^(?:error: )?(?:{files}):\d+:\d+ .*{re.escape(case.field)}", re.M)
        if not located.search(outcome.stderr):
            problems.append(f"no file:line:col line naming {case.field!r}")
    for bad in case.forbid:
        if bad in outcome.stdout + outcome.stderr:
            problems.append(f"output holds {bad!r}")
    return problems


def _snapshot(out: Path) -> object:
    if out.is_symlink():
        return ("link", os.readlink(out))
    if out.is_file():
        return ("file", out.read_bytes())
    if not out.exists():
        return None
    return {
        str(p.relative_to(out)): (os.readlink(p) if p.is_symlink() else p.read_bytes())
        for p in sorted(out.rglob("*"))
        if p.is_symlink() or p.is_file()
    }


def _outside(base: Path, out: Path) -> dict[str, bytes]:
    """Every regular file under `base` but not under --out (FIFOs and links left out)."""
    found = {}
    for path in sorted(base.rglob("*")):
        if path == out or out in path.parents or path.is_symlink() or not path.is_file():
            continue
        found[str(path.relative_to(base))] = path.read_bytes()
    return found
