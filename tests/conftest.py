from __future__ import annotations

import io
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from scalectl.cli import run
from scalectl.stack.servers import Server

if TYPE_CHECKING:
    from tests.packaging import Installed

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXAMPLES = ROOT / "examples"


def pytest_configure(config: pytest.Config) -> None:
    """A suite started in the background (`cmd &` without job control) inherits SIGINT
    ignored, and so would every scalectl it starts: the Ctrl-C tests then hang. Handled
    here, the children start with SIGINT at its default (exec resets a caught signal)."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="Rewrite golden files from the current templates; review the diff before committing.",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Modules with real servers or slow steps (`stack`, `slow`) first, each kept whole.
    pytest-xdist hands whole files to workers in this order: the long ones start early and
    the quick ones fill in at the end, instead of one worker finishing a long module while
    the other waits."""
    slow_modules = {
        item.module
        for item in items
        if item.get_closest_marker("stack") or item.get_closest_marker("slow")
    }
    items.sort(key=lambda item: item.module not in slow_modules)


def fixture_path(*parts: str) -> Path:
    """The one way tests reach sample inputs."""
    return FIXTURES.joinpath(*parts)


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., Result]:
    """Run scalectl in-process through the same entry point and error handler as the binary."""

    def invoke(*args: str | Path, env: dict[str, str] | None = None) -> Result:
        out, err = io.StringIO(), io.StringIO()
        environ = {**os.environ, "NO_COLOR": "1", **(env or {})}
        environ.pop("CI", None) if env is None or "CI" not in env else None
        code = run([str(a) for a in args], environ=environ, stdout=out, stderr=err)
        return Result(code, out.getvalue(), err.getvalue())

    return invoke


def tree(root: Path) -> dict[str, bytes]:
    """Every file under root, for "nothing changed" assertions."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@contextmanager
def reachable_dir(prefix: str) -> Iterator[Path]:
    """A fresh directory that servers running as other accounts can traverse (0711), for
    PostgreSQL's data as root. Not under pytest's basetemp: pytest makes it 0700, and
    scalectl never opens up a directory above the one it is given (docs/stack.md)."""
    root = Path(tempfile.mkdtemp(prefix=f"scalectl-{prefix}-"))
    root.chmod(0o711)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Server]:
    """One real PostgreSQL for the session, on a free loopback port."""
    from scalectl.stack.servers import start_postgres

    with reachable_dir("postgres") as root:
        server = start_postgres(root / "data")
        yield server
        server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One real Redis (or Valkey) for the session, on a free loopback port."""
    from scalectl.stack.servers import start_redis

    server = start_redis(tmp_path_factory.mktemp("redis") / "data")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def installed_scalectl(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Installed:
    """scalectl built sdist -> wheel and installed in a fresh venv outside the checkout, once
    per test run: pytest-xdist's workers share it (the first builds, the others wait)."""
    from filelock import FileLock

    from tests.packaging import build_and_install

    base = tmp_path_factory.getbasetemp()
    # Every xdist worker's basetemp is a child of the run's; without xdist, the run's own.
    shared = base if worker_id == "master" else base.parent
    with FileLock(shared / "installed.lock"):
        return build_and_install(shared / "installed")
