"""Where the validators run: a private copy of the rendered files, a minimal environment
and, when scalectl runs as root, an unprivileged account (issue 11: a rendered config that
names another file, such as an nginx `include` or a promtool `rule_files` glob, must not
read root's files into a CI log). docs/plan.md, "Validation", says what runs how."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from scalectl.privileges import RunAs, unprivileged_account

# Validators run as this account when scalectl is root: never one that owns data (the
# stack's PostgreSQL account does). Created on first use, as the stack creates its own.
ACCOUNT = "scalectl"
TIMEOUT = 120
VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
_PRINT_VERSION = "import sys; print(f'{sys.version_info.major}.{sys.version_info.minor}')"


@dataclass(frozen=True)
class Sandbox:
    """A private copy of a rendered tree (`files`) that the validators read instead."""

    original: Path
    home: Path  # the temporary directory: the copy, scratch space, HOME and TMPDIR
    files: Path
    run_as: RunAs | None
    path: str  # PATH for the validators
    python: Interpreter | None  # None: `run_as` can start no Python of this version

    def env(self, python: bool = False) -> dict[str, str]:
        """The environment validators run with: the sandbox's PATH, HOME and TMPDIR, a C.UTF-8
        locale, no colour; for a Python validator also the PYTHONPATH its interpreter needs."""
        env = {
            "PATH": self.path,
            "HOME": str(self.home),
            "TMPDIR": str(self.home),
            "LANG": "C.UTF-8",
            "NO_COLOR": "1",
        }
        if python and self.python is not None and self.python.pythonpath:
            env["PYTHONPATH"] = self.python.pythonpath
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        return env

    def scratch(self, name: str) -> Path:
        """A directory of the sandbox's own, outside the copy."""
        directory = self.home / name
        directory.mkdir()
        self.give(directory)
        return directory

    def run(self, cmd: list[str], cwd: Path | None = None) -> tuple[int, str]:
        """Run a validator as the sandbox's account; exit code and output, with paths in
        the copy named as in the original."""
        return self._run(cmd, cwd, python=False)

    def run_module(self, module: str, args: list[str]) -> tuple[int, str]:
        """`python -m module args` as the sandbox's account, in an interpreter it can start
        (see `interpreter`); exit 126 when there is none: never as root instead."""
        if self.python is None:
            who = self.run_as.name if self.run_as else "this user"
            return 126, (
                f"cannot run {module} as {who}: no Python {VERSION} it may start (this one, "
                f"{sys.executable}, is in a directory it cannot enter); validators never run "
                "as root"
            )
        return self._run([self.python.executable, "-m", module, *args], None, python=True)

    def _run(self, cmd: list[str], cwd: Path | None, python: bool) -> tuple[int, str]:
        run_as = self.run_as
        try:
            proc = subprocess.run(
                cmd,
                cwd=cwd or self.home,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                check=False,
                env=self.env(python),
                user=run_as.uid if run_as else None,
                group=run_as.gid if run_as else None,
                extra_groups=[] if run_as else None,
            )
        except subprocess.TimeoutExpired:
            return 124, f"timed out after {TIMEOUT}s"
        except OSError as exc:  # e.g. the account may not execute it
            who = f" as {run_as.name}" if run_as else ""
            return 126, f"cannot run {cmd[0]}{who}: {exc.strerror or exc}"
        text = (proc.stdout + proc.stderr).strip()
        return proc.returncode, text.replace(str(self.files), str(self.original))

    def give(self, path: Path) -> None:
        """Hand `path` to the account the validators run as (when they run as another account)."""
        if self.run_as is not None:
            os.chown(path, self.run_as.uid, self.run_as.gid, follow_symlinks=False)


@contextlib.contextmanager
def sandbox(root: Path, path: str) -> Iterator[Sandbox]:
    """A fresh private copy of `root` (regular files only: a symlink is not followed),
    owned by the account the validators run as; removed afterwards."""
    run_as = unprivileged_account((ACCOUNT,), create=ACCOUNT, fallback="nobody")
    home = Path(tempfile.mkdtemp(prefix="scalectl-check-"))
    try:
        if run_as is not None:
            os.chown(home, run_as.uid, run_as.gid)
        box = Sandbox(root, home, home / "files", run_as, path, interpreter(run_as, home))
        _copy(root, box)
        yield box
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _copy(root: Path, box: Sandbox) -> None:
    for directory, dirs, names in os.walk(root):  # os.walk does not follow symlinked dirs
        source = Path(directory)
        target = box.files / source.relative_to(root)
        target.mkdir(mode=0o700, exist_ok=True)
        box.give(target)
        dirs[:] = [d for d in dirs if not (source / d).is_symlink()]
        for name in names:
            if (source / name).is_symlink() or not (source / name).is_file():
                continue
            shutil.copyfile(source / name, target / name, follow_symlinks=False)
            os.chmod(target / name, 0o600)
            box.give(target / name)


@dataclass(frozen=True)
class Interpreter:
    """A Python the validators' account can start, and the PYTHONPATH that gives it this
    environment's packages (empty when it is this interpreter)."""

    executable: str
    pythonpath: str = ""


def interpreter(run_as: RunAs | None, home: Path) -> Interpreter | None:
    """The Python that Python validators run in: this one when `run_as` (None: no change
    of account) can start it, else another of the same minor version that it can, given
    this environment's site-packages: pyenv, for one, keeps its Pythons under a 0700 /root,
    and pure-Python packages and cp3X extensions serve any build of that version."""
    if run_as is None or _runs(sys.executable, run_as, home):
        return Interpreter(sys.executable)
    name = f"python{VERSION}"
    search = os.pathsep.join(["/usr/local/bin", "/usr/bin", "/bin"])
    candidate = shutil.which(name, path=search)
    if candidate is None or not _runs(candidate, run_as, home):
        return None
    paths = sysconfig.get_paths()
    sites = dict.fromkeys([paths["purelib"], paths["platlib"]])
    return Interpreter(candidate, os.pathsep.join(sites))


def _runs(executable: str, run_as: RunAs, home: Path) -> bool:
    """Whether `run_as` can start `executable`, and it is this Python's minor version."""
    try:
        probe = subprocess.run(
            [executable, "-c", _PRINT_VERSION],
            cwd=home,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
            env={"PATH": os.defpath},
            user=run_as.uid,
            group=run_as.gid,
            extra_groups=[],
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0 and probe.stdout.strip() == VERSION


def validator_path(environ: Mapping[str, str], extra: str) -> str:
    """PATH for the validators: the caller's, then `extra`."""
    return os.pathsep.join(p for p in [environ.get("PATH", ""), extra] if p)
