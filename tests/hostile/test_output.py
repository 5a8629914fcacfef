"""Issue 11, finding 3 (output confinement): `plan` reads, writes and deletes only inside
--out. An --out committed in a pull request may hold a tampered manifest or symlinks."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from scalectl.errors import ExitCode
from scalectl.files import MANIFEST
from tests.conftest import EXAMPLES, Result, tree

Cli = Callable[..., Result]
SMALL = EXAMPLES / "small.yaml"
SECRET = b"secret: do not print or delete\n"


@pytest.fixture
def rendered(cli: Cli, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    assert cli("plan", SMALL, "--out", out).code == 0
    return out


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "outside" / "victim.txt"
    path.parent.mkdir()
    path.write_bytes(SECRET)
    return path


def tamper(out: Path, *entries: str) -> None:
    manifest = out / MANIFEST
    names = json.loads(manifest.read_text())
    manifest.write_text(json.dumps([*names, *entries]))


def entries(victim: Path, out: Path) -> list[str]:
    """Manifest entries that name `victim`: absolute, through `..`, through a symlink."""
    (out / "link.txt").symlink_to(victim)
    return [str(victim), f"../outside/{victim.name}", "link.txt"]


def test_a_tampered_manifest_deletes_nothing_outside(
    cli: Cli, rendered: Path, victim: Path
) -> None:
    names = entries(victim, rendered)
    tamper(rendered, *names)
    result = cli("plan", SMALL, "--out", rendered)
    assert result.code == 0, result.stderr
    assert victim.read_bytes() == SECRET
    assert (rendered / "link.txt").is_symlink()  # not ours: left alone, not followed
    for name in names:
        assert f"ignoring entry {name!r}" in result.stderr
    # The new manifest holds only what this render wrote, as relative names.
    manifest = json.loads((rendered / MANIFEST).read_text())
    assert all(not Path(n).is_absolute() and ".." not in Path(n).parts for n in manifest)
    assert "link.txt" not in manifest


def test_diff_never_reads_through_the_manifest(cli: Cli, rendered: Path, victim: Path) -> None:
    tamper(rendered, *entries(victim, rendered))
    result = cli("plan", SMALL, "--out", rendered, "--diff")
    assert result.code == 0, result.stderr
    assert "secret" not in result.stdout
    assert "up to date" in result.stderr + result.stdout


def test_diff_refuses_a_symlinked_output_file(cli: Cli, rendered: Path, victim: Path) -> None:
    (rendered / "sizing.json").unlink()
    (rendered / "sizing.json").symlink_to(victim)
    result = cli("plan", SMALL, "--out", rendered, "--diff")
    assert result.code == ExitCode.BAD_INPUT, result.stderr
    assert f"{rendered / 'sizing.json'}: is a symlink" in result.stderr
    assert "secret" not in result.stdout


def test_a_symlinked_file_is_not_written_through(cli: Cli, rendered: Path, victim: Path) -> None:
    (rendered / "sizing.json").unlink()
    (rendered / "sizing.json").symlink_to(victim)
    before = tree(rendered)
    result = cli("plan", SMALL, "--out", rendered)
    assert result.code == ExitCode.BAD_INPUT, result.stderr
    assert f"{rendered / 'sizing.json'}: is a symlink" in result.stderr
    assert victim.read_bytes() == SECRET
    assert tree(rendered) == before  # nothing written


def test_a_symlinked_directory_is_not_written_through(
    cli: Cli, rendered: Path, victim: Path
) -> None:
    nginx = rendered / "nginx"
    for child in nginx.iterdir():
        child.unlink()
    nginx.rmdir()
    nginx.symlink_to(victim.parent, target_is_directory=True)
    before = sorted(p.name for p in rendered.iterdir())
    result = cli("plan", SMALL, "--out", rendered)
    assert result.code == ExitCode.BAD_INPUT, result.stderr
    assert f"{nginx}: is a symlink" in result.stderr
    assert sorted(p.name for p in victim.parent.iterdir()) == [victim.name]
    assert sorted(p.name for p in rendered.iterdir()) == before  # no staging left behind


def test_a_symlinked_manifest_is_ignored(cli: Cli, rendered: Path, tmp_path: Path) -> None:
    # A manifest that is a link to a list naming a file outside: never read, never acted on.
    victim = tmp_path / "victim.txt"
    victim.write_bytes(SECRET)
    fake = tmp_path / "fake.json"
    fake.write_text(json.dumps([str(victim)]))
    (rendered / MANIFEST).unlink()
    (rendered / MANIFEST).symlink_to(fake)
    result = cli("plan", SMALL, "--out", rendered)
    assert result.code == ExitCode.BAD_INPUT, result.stderr
    assert f"{rendered / MANIFEST}: is a symlink" in result.stderr
    assert victim.read_bytes() == SECRET
    assert fake.read_text() == json.dumps([str(victim)])
