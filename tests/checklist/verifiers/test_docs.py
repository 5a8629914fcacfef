"""rollback-doc: the project's own docs/rollback.md passes; a missing or thin one fails."""

from __future__ import annotations

from pathlib import Path

from scalectl.checklist.verifiers import Context
from tests.checklist.conftest import check
from tests.conftest import ROOT


def test_the_projects_rollback_document_passes() -> None:
    result = check("{kind: rollback-doc, mentions: [rollback, kubectl]}", Context(root=ROOT))
    assert result.status == "pass", result.evidence
    assert result.evidence[0].startswith("docs/rollback.md: ")


def test_the_first_existing_path_counts(tmp_path: Path) -> None:
    (tmp_path / "ROLLBACK.md").write_text("# Rollback\n\n" + "step\n" * 5)
    result = check("{kind: rollback-doc}", Context(root=tmp_path))
    assert result.status == "pass"
    assert result.evidence[0].startswith("ROLLBACK.md: 6 non-blank lines, 1 headings, modified ")


def test_a_missing_document_fails(tmp_path: Path) -> None:
    result = check("{kind: rollback-doc}", Context(root=tmp_path))
    assert result.status == "fail"
    assert result.evidence == (
        f"no rollback document: looked for docs/rollback.md, ROLLBACK.md in {tmp_path}",
    )


def test_a_thin_document_fails(tmp_path: Path) -> None:
    (tmp_path / "RB.md").write_text("# TODO\n")
    result = check("{kind: rollback-doc, path: RB.md, mentions: [undo]}", Context(root=tmp_path))
    assert result.status == "fail"
    assert result.evidence[1:] == (
        "RB.md is too short: 1 lines, need 5",
        "RB.md never mentions: undo",
    )
