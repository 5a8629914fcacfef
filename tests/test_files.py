"""scalectl.files helpers that several packages use."""

from __future__ import annotations

from pathlib import Path


def test_tail_reads_only_the_end_of_a_large_log(tmp_path: Path) -> None:
    from scalectl.files import TAIL_BYTES, tail

    log = tmp_path / "big.log"
    log.write_text("".join(f"line {i}\n" for i in range(200_000)))  # ~2 MB
    assert log.stat().st_size > 10 * TAIL_BYTES
    assert tail(log, 3) == ["line 199997", "line 199998", "line 199999"]
    assert all(line.startswith("line ") for line in tail(log, 10_000))
    assert tail(tmp_path / "missing.log") == []
