"""Evaluating a parsed condition against an Observation. Never raises: a value the response
cannot supply makes the condition false, and the detail says why (docs/health.md, "How a
condition fails")."""

from __future__ import annotations

import fnmatch
import json
import math
from dataclasses import dataclass
from typing import Any

from scalectl.duration import format_duration
from scalectl.exposition import Exposition, Selector
from scalectl.health.conditions.observation import Observation
from scalectl.health.conditions.syntax import (
    ALWAYS_KNOWN,
    NUMBER,
    RATE_FUNCTIONS,
    BinOp,
    Call,
    Condition,
    Literal,
    Node,
    Placeholder,
    uses_rates,
)


@dataclass(frozen=True)
class ConditionResult:
    """One condition judged against one response: whether it held, and why."""

    condition: str
    ok: bool
    detail: str  # the condition with what each side resolved to, or why it could not be


class _Unresolved(Exception):
    """A value the response cannot supply; the condition fails with this message."""


@dataclass(frozen=True)
class _Pattern:
    pattern: str


@dataclass(frozen=True)
class _AnyOf:
    values: tuple[Any, ...]


def evaluate(cond: Condition, obs: Observation) -> ConditionResult:
    """Judge `cond` against the observation. Never raises: a value the response cannot supply (no
    such JSON path, no such series, a rate without an earlier scrape) makes the condition
    fail, the detail saying why."""
    try:
        left = _value(cond.left, obs)
        right = _value(cond.right, obs)
        ok = _compare(left, cond.op, right)
    except _Unresolved as exc:
        return ConditionResult(cond.text, False, f"{cond.text}: {exc}")
    detail = f"{_show(cond.left, left)} {cond.op} {_show(cond.right, right)}"
    if uses_rates(cond) and obs.previous is not None:
        detail += f" (over {obs.taken_at - obs.previous.taken_at:.1f}s)"
    return ConditionResult(cond.text, ok, detail)


def _value(node: Node, obs: Observation) -> Any:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Placeholder):
        return _placeholder_value(node, obs)
    if isinstance(node, BinOp):
        return _arith(node, _value(node.left, obs), _value(node.right, obs))
    if node.func == "has":
        arg = node.args[0]
        assert isinstance(arg, Placeholder)
        return _has(arg, obs)
    if node.func == "pat":
        arg = node.args[0]
        assert isinstance(arg, Literal)
        return _Pattern(arg.text if not isinstance(arg.value, str) else arg.value)
    if node.func == "any":
        return _AnyOf(tuple(_value(a, obs) for a in node.args))
    if node.func in RATE_FUNCTIONS:
        return _over_time(node, obs)
    value = _value(node.args[0], obs)  # len
    if isinstance(value, str | list | dict):
        return len(value)
    raise _Unresolved(f"len() needs text, a list or an object, got {_show_value(value)}")


def _placeholder_value(node: Placeholder, obs: Observation) -> Any:
    if node.name == "CONNECTED":
        return obs.connected
    if node.name == "STATUS":
        return obs.status
    if node.name == "RESPONSE_TIME":
        return round(obs.elapsed_ms, 1)
    if node.name == "DNS_RCODE":
        if obs.dns_rcode is None:
            raise _Unresolved(obs.error or "not a DNS probe (dns://name)")
        return obs.dns_rcode
    if not obs.connected:
        raise _Unresolved(f"no response ({obs.error or 'not connected'})")
    if node.name == "METRIC":
        assert node.selector is not None
        return _metric(node.selector, obs)
    if node.name == "CERTIFICATE_EXPIRATION":
        if obs.certificate_ms is None:
            raise _Unresolved(obs.certificate_error or "no TLS certificate (https:// or tls://)")
        return obs.certificate_ms
    if not node.path:
        return obs.text.strip()
    ok, data = obs.json
    if not ok:
        raise _Unresolved("the body is not JSON")
    return _walk(data, node.path)


def _walk(data: Any, path: tuple[str | int, ...]) -> Any:
    here = "[BODY]"
    for part in path:
        if isinstance(part, int):
            if not isinstance(data, list):
                raise _Unresolved(f"{here} is not a list")
            if part >= len(data):
                raise _Unresolved(f"{here} has {len(data)} items, no [{part}]")
            data = data[part]
            here += f"[{part}]"
        else:
            if not isinstance(data, dict):
                raise _Unresolved(f"{here} is not an object")
            if part not in data:
                raise _Unresolved(f"{here} has no key '{part}'")
            data = data[part]
            here += f".{part}"
    return data


def _exposition(obs: Observation, which: str = "") -> Exposition:
    parsed = obs.metrics
    if isinstance(parsed, str):
        raise _Unresolved(which + parsed)
    return parsed


def _none_matched(selector: Selector, parsed: Exposition) -> float:
    """No series matches: a counter (declared so, or named *_total) is 0, nothing counted
    yet (prometheus_client creates labelled series on first use); anything else fails, so
    a typo in a gauge selector cannot pass silently."""
    if parsed.is_counter(selector.name):
        return 0.0
    if not parsed.exposes(selector.name):
        raise _Unresolved(f"no metric named '{selector.name}'")
    raise _Unresolved(f"no series matches {selector}")


def _metric(selector: Selector, obs: Observation) -> float:
    """The sum over every series the selector matches."""
    parsed = _exposition(obs)
    samples = parsed.select(selector)
    if samples:
        return math.fsum(s.value for s in samples)
    return _none_matched(selector, parsed)


def _over_time(node: Call, obs: Observation) -> float:
    """increase(): how much the matching series grew between the previous scrape and this
    one, summed; rate(): that per second. A series that went down was reset (the process
    restarted), so it counts from zero, as in Prometheus; a series new since the previous
    scrape counts from zero too (labelled counters appear on first use)."""
    arg = node.args[0]
    assert isinstance(arg, Placeholder) and arg.selector is not None
    if not obs.connected:
        raise _Unresolved(f"no response ({obs.error or 'not connected'})")
    earlier = obs.previous
    if earlier is None:
        raise _Unresolved(f"{node.func}() needs two scrapes of this URL; there was one")
    if not earlier.connected:
        raise _Unresolved(f"the earlier scrape got no response ({earlier.error})")
    window = obs.taken_at - earlier.taken_at
    if window <= 0:
        raise _Unresolved(f"{node.func}(): the two scrapes were not taken apart in time")
    now = _exposition(obs)
    before = {
        s.labels: s.value for s in _exposition(earlier, "the earlier scrape: ").select(arg.selector)
    }
    samples = now.select(arg.selector)
    if not samples:
        _none_matched(arg.selector, now)
    grown = math.fsum(
        s.value - before.get(s.labels, 0.0) if s.value >= before.get(s.labels, 0.0) else s.value
        for s in samples
    )
    return grown / window if node.func == "rate" else grown


def _has(node: Placeholder, obs: Observation) -> bool:
    if node.name in ALWAYS_KNOWN:
        return obs.connected
    if node.name == "METRIC":
        parsed = obs.metrics if obs.connected else ""
        assert node.selector is not None
        return not isinstance(parsed, str) and bool(parsed.select(node.selector))
    try:
        _placeholder_value(node, obs)
    except _Unresolved:
        return False
    return True


def _arith(node: BinOp, left: Any, right: Any) -> float:
    a, b = _number(left, node.left), _number(right, node.right)
    if node.op == "+":
        return a + b
    if node.op == "-":
        return a - b
    if node.op == "*":
        return a * b
    if b == 0:
        # 0/0 is 0: a ratio of errors over requests with no requests has no errors.
        if a == 0:
            return 0.0
        raise _Unresolved(f"division by zero in {node.text}")
    return a / b


def _number(value: Any, node: Node) -> float:
    number = _as_number(value)
    if number is None:
        raise _Unresolved(f"{node.text} is {_show_value(value)}, not a number")
    return number


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and NUMBER.fullmatch(value.strip()):
        return float(value)
    return None


def _compare(left: Any, op: str, right: Any) -> bool:
    if op in ("==", "!="):
        equal = _equal(left, right)
        return equal if op == "==" else not equal
    a, b = _as_number(left), _as_number(right)
    for value, number in ((left, a), (right, b)):
        if number is None:
            raise _Unresolved(f"'{op}' compares numbers; got {_show_value(value)}")
    assert a is not None and b is not None
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def _equal(left: Any, right: Any) -> bool:
    if isinstance(right, _Pattern | _AnyOf) and not isinstance(left, _Pattern | _AnyOf):
        left, right = right, left
    if isinstance(left, _Pattern):
        return fnmatch.fnmatchcase(_plain(right), left.pattern)
    if isinstance(left, _AnyOf):
        return any(_equal(v, right) for v in left.values)
    a, b = _as_number(left), _as_number(right)
    if a is not None and b is not None:
        return a == b
    return _plain(left) == _plain(right)


def _plain(value: Any) -> str:
    """The text a value compares as: JSON spelling for true/false/null and containers."""
    if value is None or isinstance(value, bool | list | dict):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _show(node: Node, value: Any) -> str:
    if isinstance(node, Literal) or (isinstance(node, Call) and node.func in ("pat", "any")):
        return node.text
    if isinstance(node, Placeholder) and node.name == "CERTIFICATE_EXPIRATION":
        left = value / 1000
        return f"{node.text} ({'-' if left < 0 else ''}{format_duration(abs(left))})"
    return f"{node.text} ({_show_value(value)})"


def _show_value(value: Any) -> str:
    if isinstance(value, _Pattern):
        return f"pat({value.pattern})"
    if isinstance(value, _AnyOf):
        return "any(" + ", ".join(_show_value(v) for v in value.values) + ")"
    if isinstance(value, float):
        return f"{value:.4g}"
    text = _plain(value)
    return text if len(text) <= 60 else text[:57] + "..."
