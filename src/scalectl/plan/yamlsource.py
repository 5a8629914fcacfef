"""YAML loading that remembers where every value came from, for `file:line:col` errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scalectl.errors import InputError

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Mark:
    file: str
    line: int  # 1-based
    col: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass
class Located:
    """A plain Python document plus the position of each value and each mapping key."""

    data: Any
    file: str
    values: dict[Path_, Mark] = field(default_factory=dict)
    keys: dict[Path_, Mark] = field(default_factory=dict)

    def mark(self, path: Path_, *, key: bool = False) -> Mark:
        """The closest known position for `path`, walking up to a parent if needed."""
        table = self.keys if key else self.values
        probe = tuple(path)
        while probe:
            if probe in table:
                return table[probe]
            if probe in self.values:
                return self.values[probe]
            probe = probe[:-1]
        return self.values.get((), Mark(self.file, 1, 1))


def _mark(file: str, node: yaml.Node) -> Mark:
    return Mark(file, node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.constructor = yaml.SafeLoader("")
        self.values: dict[Path_, Mark] = {}
        self.keys: dict[Path_, Mark] = {}
        self.problems: list[str] = []

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.values[path] = _mark(self.file, node)
        if isinstance(node, yaml.MappingNode):
            self.constructor.flatten_mapping(node)  # resolves `<<` merge keys
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self.constructor.construct_object(key_node, deep=True)
                if not isinstance(key, str | int | float | bool):
                    self.problems.append(
                        f"{_mark(self.file, key_node)}: mapping keys must be scalars"
                    )
                    continue
                child = (*path, str(key))
                if key in out:
                    self.problems.append(
                        f"{_mark(self.file, key_node)} {_dotted(child)}: duplicate key"
                        f" (first at line {self.keys[child].line})"
                    )
                    continue
                self.keys[child] = _mark(self.file, key_node)
                out[str(key)] = self.build(value_node, child)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self.constructor.construct_object(node, deep=True)


def _dotted(path: Path_) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(document)"


dotted = _dotted


def parse(text: str, file: str) -> Located:
    """Parse one YAML document; malformed YAML raises InputError with its position."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else file
        problem = exc.problem or exc.context or "invalid YAML"
        raise InputError(f"{where}: malformed YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{file}: malformed YAML: {exc}") from None
    if node is None:
        return Located(None, file)
    builder = _Builder(file)
    try:
        data = builder.build(node, ())
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else file
        raise InputError(f"{where}: malformed YAML: {exc.problem}") from None
    if builder.problems:
        raise InputError(f"{file}: {len(builder.problems)} problem(s)", lines=builder.problems)
    return Located(data, file, builder.values, builder.keys)


def load(path: Path) -> Located:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a YAML file") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return parse(text, str(path))
