"""The structure of a rendered file, apart from its values (issue 11, "Rendered strings").

A plan string that escapes its quoting shows up here as a different sequence of nginx
directives, YAML/JSON keys, PromQL operators or Go template actions. Each rendered file
becomes a list of `Item`s, in document order; two renders of plans that differ in one
string must give lists of the same length whose items agree, except for names the plan
itself supplies (`loose` in `differences`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import yaml

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 20 times faster


@dataclass(frozen=True)
class Item:
    depth: int
    kind: str  # directive, block, end, key, item, expr, actions, section, setting
    name: str  # a directive or key name, a PromQL skeleton, Go actions; "" where none


class NginxSyntaxError(ValueError):
    pass


_NGINX_TOKEN = re.compile(
    r"""\s+|\#[^\n]*|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[;{}]|(?:[^\s;{}"'\\]|\\.)+""", re.S
)


def nginx_tokens(text: str) -> Iterator[str]:
    """nginx's lexer, enough for our files: words, quoted strings, ";", "{", "}", comments."""
    pos = 0
    while pos < len(text):
        match = _NGINX_TOKEN.match(text, pos)
        if match is None:
            raise NginxSyntaxError(f"cannot tokenize at {pos}: {text[pos : pos + 20]!r}")
        token = match.group()
        pos = match.end()
        if token.strip() and not token.startswith("#"):
            yield token


def nginx_items(text: str) -> list[Item]:
    """Directive names with their block nesting; arguments are values and are dropped."""
    items: list[Item] = []
    words: list[str] = []
    depth = 0
    for token in nginx_tokens(text):
        if token == ";":
            if not words:
                raise NginxSyntaxError("empty directive")
            items.append(Item(depth, "directive", words[0]))
            words = []
        elif token == "{":
            items.append(Item(depth, "block", words[0] if words else ""))
            words = []
            depth += 1
        elif token == "}":
            if words or depth == 0:
                raise NginxSyntaxError("unbalanced }")
            depth -= 1
            items.append(Item(depth, "end", ""))
        else:
            words.append(token)
    if words or depth:
        raise NginxSyntaxError("unterminated directive or block")
    return items


_PROMQL_STRING = re.compile(r'"(?:[^"\\]|\\.)*"' + r"|'(?:[^'\\]|\\.)*'|`[^`]*`", re.S)
_GO_ACTION = re.compile(r"\{\{.*?\}\}", re.S)
_ESCAPED_BRACE = '{{"{"}}'  # scalectl.plan.escape.go_template_text's one action


_NUMBER = re.compile(r"(?<![A-Za-z_:])[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?")


def promql_skeleton(expr: str) -> str:
    """An expression with its string literals and numbers blanked: operators, metric names
    and label matchers stay (numbers come from the plan's sizes and targets)."""
    blanked = _NUMBER.sub("0", _PROMQL_STRING.sub('""', expr))
    return " ".join(blanked.split())


def go_actions(text: str) -> str:
    return " ".join(a for a in _GO_ACTION.findall(text) if a != _ESCAPED_BRACE)


def tree_items(node: Any, depth: int = 0, key: str = "") -> Iterator[Item]:
    """YAML or JSON documents: every key and list item, in order, with its depth."""
    if isinstance(node, dict):
        for name, child in node.items():
            yield Item(depth, "key", str(name))
            yield from tree_items(child, depth + 1, str(name))
    elif isinstance(node, list):
        for child in node:
            yield Item(depth, "item", "")
            yield from tree_items(child, depth + 1, key)
    elif isinstance(node, str) and key == "expr":
        yield Item(depth, "expr", promql_skeleton(node))
    elif isinstance(node, str) and key in ("summary", "description"):
        yield Item(depth, "actions", go_actions(node))


def ini_items(text: str) -> list[Item]:
    items = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith((";", "#")):
            continue
        if stripped.startswith("["):
            items.append(Item(0, "section", stripped))
        else:
            items.append(Item(1, "setting", stripped.partition("=")[0].strip()))
    return items


def yaml_items(text: str) -> list[Item]:
    # A Prometheus rule file's rule/alert names and label/annotation keys are keys and
    # values of this tree: `alert: X` is compared as a value below, in `names`.
    return [item for doc in yaml.load_all(text, Loader=_LOADER) for item in tree_items(doc)]


def json_items(text: str) -> list[Item]:
    return list(tree_items(json.loads(text)))


def parser_for(path: str) -> Callable[[str], list[Item]]:
    if path.endswith(".conf"):
        return nginx_items
    if path.endswith(".json"):
        return json_items
    if path.endswith(".ini"):
        return ini_items
    return yaml_items


def rule_names(text: str) -> list[str]:
    """The `alert:` and `record:` names of a Prometheus rule file, in order."""
    doc = yaml.load(text, Loader=_LOADER) or {}
    return [
        rule.get("alert") or rule.get("record") or ""
        for group in doc.get("groups", [])
        for rule in group.get("rules", [])
    ]


EXACT = frozenset({"expr", "actions"})  # never hold a plan-supplied name


def differences(
    base: list[Item], other: list[Item], loose: Callable[[str], bool]
) -> list[tuple[int, Item | None, Item | None]]:
    """Positions where `other` differs from `base`; a name `loose` accepts may differ."""
    out: list[tuple[int, Item | None, Item | None]] = []
    for i in range(max(len(base), len(other))):
        a = base[i] if i < len(base) else None
        b = other[i] if i < len(other) else None
        if (
            a is None
            or b is None
            or (a.depth, a.kind) != (b.depth, b.kind)
            or (a.name != b.name and (a.kind in EXACT or not (loose(a.name) and loose(b.name))))
        ):
            out.append((i, a, b))
    return out
