"""scalectl as a user gets it: an sdist, a wheel built from that sdist, and a fresh venv
outside the checkout with that wheel installed, its dependencies pinned by uv.lock."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT

EXTRAS = "loadtest,validators,stack"


@dataclass(frozen=True)
class Installed:
    """A venv holding the installed wheel, and an environment that cannot see the checkout."""

    venv: Path
    sdist: Path
    wheel: Path
    home: Path

    @property
    def scalectl(self) -> Path:
        return self.venv / "bin" / "scalectl"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def env(self, **extra: str) -> dict[str, str]:
        """No PYTHONPATH, no checkout on PATH: only the venv and the system's tools."""
        path = f"{self.venv / 'bin'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        return {"PATH": path, "HOME": str(self.home), "NO_COLOR": "1", "LANG": "C.UTF-8", **extra}

    def run(
        self, *args: str | Path, cwd: Path, timeout: float = 300, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.scalectl), *map(str, args)],
            cwd=cwd,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def uv() -> str:
    """The uv that .ci/bootstrap installed from .ci/uv.txt, else one on PATH."""
    pinned = ROOT / ".tools" / "uv" / "bin" / "uv"
    found = str(pinned) if pinned.is_file() else shutil.which("uv")
    if found is None:
        raise RuntimeError("uv not found: run bash .ci/bootstrap --dev")
    return found


def _run(
    cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=600
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return proc


def build_and_install(root: Path) -> Installed:
    """sdist from the checkout, wheel from the sdist (never from the checkout), then a venv
    in `root` (outside the repo) with `scalectl[EXTRAS]` from that wheel. Done once: a root
    that already holds a finished install is reused."""
    done = root / "installed.json"
    if done.is_file():
        return Installed(**{k: Path(v) for k, v in json.loads(done.read_text()).items()})
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    # o+x up to root: PostgreSQL's unprivileged account may run the venv's server wheel, and
    # pytest's basetemp is 0700.
    for folder in (root, *root.parents):
        if not folder.stat().st_mode & 0o001:
            folder.chmod(folder.stat().st_mode | 0o001)
    dist = root / "dist"
    _run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "-o", str(dist), str(ROOT)])
    [sdist] = dist.glob("scalectl-*.tar.gz")
    unpacked = root / "src"
    unpacked.mkdir()
    shutil.unpack_archive(sdist, unpacked)
    [tree] = unpacked.iterdir()
    _run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "-o", str(dist), str(tree)])
    [wheel] = dist.glob("scalectl-*.whl")

    constraints = root / "constraints.txt"
    _run(
        [
            uv(),
            "export",
            "--frozen",
            "--no-hashes",
            "--no-emit-project",
            "--all-extras",
            "--no-header",
            "-o",
            str(constraints),
        ],
        cwd=ROOT,
    )
    venv = root / "venv"
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    _run([uv(), "venv", "-q", "--python", sys.executable, str(venv)], env=env)
    _run(
        [
            uv(),
            "pip",
            "install",
            "-q",
            "--python",
            str(venv / "bin" / "python"),
            "-c",
            str(constraints),
            f"scalectl[{EXTRAS}] @ {wheel.as_uri()}",
        ],
        env=env,
    )
    home = root / "home"
    home.mkdir()
    installed = Installed(venv=venv, sdist=sdist, wheel=wheel, home=home)
    done.write_text(json.dumps({k: str(v) for k, v in dataclasses.asdict(installed).items()}))
    return installed
