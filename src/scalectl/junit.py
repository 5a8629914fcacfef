"""JUnit XML, the test report CI systems show: one builder for every report that gates a
run on figures (loadtest SLOs, drill figures).

A gated figure is a testcase: a breach is a <failure>, an inconclusive figure <skipped>.
The suite's counts are derived from its cases, so they cannot disagree with them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Failure:
    """A <failure>: `message` and `type` attributes, `text` the element's body."""

    message: str
    type: str
    text: str


@dataclass(frozen=True)
class Case:
    """One <testcase>: passed, failed (`failure`), or skipped (`skipped`, its message)."""

    classname: str
    name: str
    time: str | None = None  # seconds as written; None leaves the attribute out
    failure: Failure | None = None
    skipped: str | None = None


@dataclass(frozen=True)
class Suite:
    """One <testsuite> and its cases."""

    name: str
    cases: Sequence[Case]
    timestamp: str  # ISO 8601
    time: str | None = None  # seconds as written; None leaves the attribute out


def to_xml(name: str, suites: Sequence[Suite]) -> str:
    """The JUnit XML document of `suites` under a <testsuites> named `name`, indented,
    with an XML declaration and a final newline."""
    root = ET.Element("testsuites", name=name)
    for suite in suites:
        attributes = {
            "name": suite.name,
            "tests": str(len(suite.cases)),
            "failures": str(sum(c.failure is not None for c in suite.cases)),
            "errors": "0",
            "skipped": str(sum(c.failure is None and c.skipped is not None for c in suite.cases)),
        }
        if suite.time is not None:
            attributes["time"] = suite.time
        attributes["timestamp"] = suite.timestamp
        element = ET.SubElement(root, "testsuite", attributes)
        for case in suite.cases:
            _add_case(element, case)
    ET.indent(root)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{ET.tostring(root, encoding="unicode")}\n'


def _add_case(suite: ET.Element, case: Case) -> None:
    attributes = {"classname": case.classname, "name": case.name}
    if case.time is not None:
        attributes["time"] = case.time
    element = ET.SubElement(suite, "testcase", attributes)
    if case.failure is not None:
        failure = ET.SubElement(
            element, "failure", message=case.failure.message, type=case.failure.type
        )
        failure.text = case.failure.text
    elif case.skipped is not None:
        ET.SubElement(element, "skipped", message=case.skipped)
