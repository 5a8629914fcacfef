"""report.html read back: a parser for its elements, charts and tables, and the page as
headless Chromium renders it, with its console lines."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--enable-logging=stderr",
    "--v=0",
)
# Chromium logs a page's console messages, uncaught exceptions included, as
# `[...:INFO:CONSOLE:12] "Uncaught Error: boom", source: file:///... (12)`
# (older builds: `INFO:CONSOLE(12)]`).
CONSOLE_LINE = re.compile(r":CONSOLE\b|Uncaught")


class Page(HTMLParser):
    """Elements by id, polylines per chart, table cells per table, every URL attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.attrs_by_id: dict[str, dict[str, str | None]] = {}
        self.polylines: dict[str, list[dict[str, str | None]]] = {}
        self.cells: dict[str, list[str]] = {}
        self.urls: list[str] = []
        self.scripts: dict[str, str] = {}
        self._svg: str | None = None
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._script: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
            self.attrs_by_id[str(a["id"])] = a
        self.urls += [str(v) for k, v in attrs if k in ("src", "href", "xlink:href", "action")]
        if tag == "svg":
            self._svg = a.get("id")
        elif tag == "polyline" and self._svg:
            self.polylines.setdefault(self._svg, []).append(a)
        elif tag == "table":
            self._table = a.get("id")
        elif tag == "td" and self._table:
            self._cell = []
        elif tag == "script":
            self._script = a.get("id") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._svg = None
        elif tag == "table":
            self._table = None
        elif tag == "td" and self._table and self._cell is not None:
            self.cells.setdefault(self._table, []).append("".join(self._cell))
            self._cell = None
        elif tag == "script":
            self._script = None

    def handle_data(self, text: str) -> None:
        if self._cell is not None:
            self._cell.append(text)
        if self._script is not None:
            self.scripts[self._script] = self.scripts.get(self._script, "") + text


def parse(text: str) -> Page:
    """`text` (report.html, or the DOM Chromium dumps) parsed."""
    parser = Page()
    parser.feed(text)
    parser.close()
    return parser


def chromium() -> str:
    """The chromium binary; a failure under CI=true without one, else a skip."""
    found = shutil.which("chromium")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not on PATH; .ci/bootstrap --dev installs it (apt chromium)")
    pytest.skip("chromium is not on PATH (apt-get install chromium); required under CI=true")


def open_in_chromium(html: Path, tmp_path: Path) -> tuple[str, list[str]]:
    """The DOM after load, and the page's console lines from Chromium's log."""
    profile = tmp_path / "chromium-profile"
    proc = subprocess.run(
        [
            chromium(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--dump-dom",
            html.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, [line for line in proc.stderr.splitlines() if CONSOLE_LINE.search(line)]
