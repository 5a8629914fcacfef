"""Declarative response checks in an SLO file (`checks` under an endpoint or a group), like
k6's `check()` and Artillery's `expect`: conditions on a response's status code, a header,
or a value in its JSON body. The Locust plugin evaluates them (child/checks.py); the SLO
file's `checks_rate` gates the share that passed (scalectl.loadtest.evaluation).

The SLO file is untrusted input: every string and count here is bounded, and no condition
is a regular expression, so a check costs at most a bounded JSON parse and a few
comparisons per response (docs/loadtest.md, "Checks").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, model_validator

from scalectl.strict import Strict

if TYPE_CHECKING:  # slo.py holds the checks: it imports this module
    from scalectl.loadtest.results import Results
    from scalectl.loadtest.slo import SloSpec

MAX_CHECKS_PER_SCOPE = 20  # checks under one endpoint or group
MAX_CHECKS = 100  # checks in one SLO file
MAX_TEXT = 200  # characters of a header value, an expected value, a name or a path
MAX_PATH_PARTS = 16  # segments of a JSON path
MAX_STATUSES = 10  # codes and classes in one status check
# JSON bodies longer than this are not parsed: their JSON checks fail (a check never passes
# on what it did not read). Locust has read the whole body already; this bounds the parse.
MAX_BODY_BYTES = 1 << 20

_STATUS_CLASS = re.compile(r"[1-5]xx")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}")  # an HTTP token (RFC 9110)

JsonType = Literal["string", "number", "integer", "boolean", "null", "array", "object"]
Scalar = str | bool | int | float | None


def _statuses(value: object) -> tuple[str, ...]:
    """`200`, `2xx` or a list of these, as a tuple of "200" / "2xx"."""
    items = value if isinstance(value, list | tuple) else [value]
    if not 1 <= len(items) <= MAX_STATUSES:
        raise ValueError(f"give 1 to {MAX_STATUSES} status codes or classes")
    out = []
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool) and 100 <= item <= 599:
            out.append(str(item))
        elif isinstance(item, str) and (
            _STATUS_CLASS.fullmatch(item) or (item.isdigit() and 100 <= int(item) <= 599)
        ):
            out.append(item)
        else:
            raise ValueError("a status is a code 100..599 or a class 1xx..5xx")
    return tuple(out)


def _path(value: object) -> object:
    if isinstance(value, str):
        parts = value.split(".")
        if len(parts) > MAX_PATH_PARTS or not all(parts):
            raise ValueError(
                f"a JSON path is 1 to {MAX_PATH_PARTS} non-empty keys or list indexes joined "
                "by '.': items.0.id"
            )
    return value


def _header_name(value: str) -> str:
    if not _HEADER_NAME.fullmatch(value):
        raise ValueError("not an HTTP header name (letters, digits, '-' and a few marks)")
    return value


def _scalar(value: object) -> object:
    if isinstance(value, list | dict):
        raise ValueError("equals takes a string, number, boolean or null, not a list or mapping")
    return value


Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]
HeaderName = Annotated[str, AfterValidator(_header_name)]
Statuses = Annotated[tuple[str, ...], BeforeValidator(_statuses)]
JsonPath = Annotated[str, Field(min_length=1, max_length=MAX_TEXT), BeforeValidator(_path)]
Expected = Annotated[Scalar, BeforeValidator(_scalar)]


def status_in(statuses: frozenset[str], code: object) -> bool:
    """Whether status `code` is one of `statuses` ("200", "2xx"); a missing code never is."""
    if not isinstance(code, int) or isinstance(code, bool):
        return False
    return str(code) in statuses or f"{code // 100}xx" in statuses


class Check(Strict):
    """One condition on each response of an endpoint (or of every endpoint of a group):
    exactly one of `status`, `header` or `json`, with what to expect of it."""

    model_config = ConfigDict(populate_by_name=True)  # merged with Strict's

    name: Text | None = Field(None, description="Its label in reports; derived when omitted.")
    status: Statuses | None = Field(None, description="200, 2xx or a list: [200, 304, 4xx].")
    header: HeaderName | None = Field(None, description="A response header's name (any case).")
    json_path: JsonPath | None = Field(
        None, alias="json", description="A dotted path into the JSON body: items.0.id."
    )
    exists: bool | None = Field(None, description="The header or JSON value is (not) there.")
    equals: Expected = Field(None, description="The header's value, or the JSON value, is this.")
    contains: Text | None = Field(None, description="The header's value contains this text.")
    type: JsonType | None = Field(None, description="The JSON value's type.")
    checks_rate: Annotated[float, Field(ge=0, le=1)] | None = Field(
        None, description="Least share of this check's evaluations that pass, 0..1."
    )

    @model_validator(mode="after")
    def _one_condition(self) -> Check:
        subjects = [s for s in ("status", "header", "json_path") if getattr(self, s) is not None]
        if len(subjects) != 1:
            raise ValueError("set exactly one of 'status', 'header' or 'json'")
        tests = [t for t in ("exists", "equals", "contains", "type") if t in self.model_fields_set]
        if self.status is not None:
            if tests:
                raise ValueError(f"a status check takes no '{tests[0]}'")
            return self
        allowed = ("exists", "equals", "contains") if self.header else ("exists", "equals", "type")
        if len(tests) != 1 or tests[0] not in allowed:
            subject = "header" if self.header else "json"
            raise ValueError(f"a {subject} check takes exactly one of {', '.join(allowed)}")
        if self.header is not None and "equals" in tests and not isinstance(self.equals, str):
            raise ValueError("a header's equals is a string (quote it)")
        if isinstance(self.equals, str) and len(self.equals) > MAX_TEXT:
            raise ValueError(f"equals: at most {MAX_TEXT} characters")
        return self

    @property
    def test(self) -> str:
        """Which condition it sets: exists, equals, contains or type ('' for a status)."""
        fields = self.model_fields_set
        return next((t for t in ("exists", "equals", "contains", "type") if t in fields), "")

    @property
    def label(self) -> str:
        """Its name in reports: `name`, else what it checks ('status 2xx', 'json items.0.id
        exists', "header Content-Type contains 'json'")."""
        if self.name is not None:
            return self.name
        if self.status is not None:
            return "status " + ",".join(self.status)
        subject = f"header {self.header}" if self.header else f"json {self.json_path}"
        test = self.test
        if test == "exists":
            return f"{subject} {'exists' if self.exists else 'absent'}"
        if test == "type":
            return f"{subject} is {self.type}"
        value = self.contains if test == "contains" else self.equals
        return f"{subject} {test} {json.dumps(value)}"


Checks = Annotated[list[Check], Field(max_length=MAX_CHECKS_PER_SCOPE)]


@dataclass(frozen=True)
class CheckTally:
    """One check's evaluations on one endpoint's responses over the measured part; `endpoint`
    None (and no counts) when it was evaluated on none."""

    check: str  # its label
    scope: str  # where it was declared: an endpoint key as written, or `group NAME`
    endpoint: str | None
    passed: int
    failed: int

    @property
    def rate(self) -> float | None:
        """The share that passed; None when it was never evaluated."""
        total = self.passed + self.failed
        return self.passed / total if total else None


def check_tallies(spec: SloSpec, results: Results) -> list[CheckTally]:
    """Every declared check's counts per endpoint it was evaluated on, in file order."""
    out = []
    for declared in spec.declared_checks():
        label = declared.check.label
        rows = [
            CheckTally(label, declared.scope, e.key, *e.checks[declared.id])
            for e in results.endpoints
            if declared.id in e.checks
        ]
        out += rows or [CheckTally(label, declared.scope, None, 0, 0)]
    return out
