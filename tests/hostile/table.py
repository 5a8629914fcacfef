"""Run the hostile-input corpus and print its table for issue 11's closing note.

    .venv/bin/python -m tests.hostile.table

Per category: cases tried, how many exited 2 and 1, crashes (an exit code other than
0/1/2/4, a traceback or an internal error), and cases that did not behave as the corpus
says (known gaps marked xfail in tests/hostile/corpus.py are named below the table).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from tests.hostile.corpus import CASES, EXISTING
from tests.hostile.runner import run_case


def main() -> int:
    rows: dict[str, Counter[str]] = {}
    gaps: list[str] = []
    with tempfile.TemporaryDirectory(prefix="scalectl-corpus-") as tmp:
        for index, case in enumerate(CASES):
            outcome = run_case(case, Path(tmp) / str(index))
            row = rows.setdefault(case.category, Counter())
            row["tried"] += 1
            row["exit 2"] += outcome.code == 2
            row["exit 1"] += outcome.code == 1
            row["crashes"] += outcome.crashed
            row["not as expected"] += bool(outcome.problems)
            if outcome.problems:
                known = f" (known: {case.xfail})" if case.xfail else ""
                gaps.append(f"{case.category}:{case.name}: {'; '.join(outcome.problems)}{known}")
    columns = ["tried", "exit 2", "exit 1", "crashes", "not as expected"]
    total: Counter[str] = Counter()
    out = ["| category | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for category, row in rows.items():
        total.update(row)
        out.append(f"| {category} | " + " | ".join(str(row[c]) for c in columns) + " |")
    out.append("| **total** | " + " | ".join(f"**{total[c]}**" for c in columns) + " |")
    sys.stdout.write("\n".join(out) + "\n")
    if gaps:
        sys.stdout.write("\nNot as expected:\n" + "".join(f"- {g}\n" for g in gaps))
    sys.stdout.write("\nAlso hostile, in their own modules (test cases, not run here):\n")
    for path, what in EXISTING.items():
        sys.stdout.write(f"- {path}: {_collected(path)} cases, {what}\n")
    return 0


def _collected(path: str) -> int:
    """How many test cases pytest collects from one module (parametrized ones each count)."""
    root = Path(__file__).resolve().parents[2]
    listing = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:randomly", path],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    return sum("::" in line for line in listing.stdout.splitlines())


if __name__ == "__main__":
    sys.exit(main())
