"""YAML loading that remembers where every value came from, for `file:line:col` errors."""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scalectl.errors import InputError
from scalectl.inputlimit import LIMIT_ENV, input_limit
from scalectl.usertext import shown

Path_ = tuple[str | int, ...]

# Input limits: plans, SLO files, health configs and answers arrive in pull requests and
# are read on CI machines, so each is bounded before it can cost time or memory (issue 11).
MAX_DEPTH = 64  # nested mappings/sequences; real plans stay under 10
MAX_ALIASES = 100  # `*alias` uses in one document
MAX_VALUES = 100_000  # values built, counting each alias and merge expansion again
MAX_NUMBER_CHARS = 40  # digits in one number: beyond any bound the schemas accept
KEY_LIMIT = 60  # characters of one key shown in a message

_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_BOOL_TAG = "tag:yaml.org,2002:bool"
# YAML 1.2's booleans. PyYAML follows YAML 1.1, where yes/no/on/off are booleans too, so
# `on:` under load_balancer.retries became the key True (issue 14).
_BOOL_12 = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")


def _yaml12_loader() -> Any:
    """PyYAML's safe loader, with the C parser where libyaml is present (faster, and no
    Python recursion while parsing), resolving plain scalars to booleans as YAML 1.2 does:
    only true and false; yes, no, on and off stay strings."""
    base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    resolvers = {
        first: [(tag, regexp) for tag, regexp in pairs if tag != _BOOL_TAG]
        for first, pairs in base.yaml_implicit_resolvers.items()
    }
    loader: Any = type("Yaml12SafeLoader", (base,), {"yaml_implicit_resolvers": resolvers})
    loader.add_implicit_resolver(_BOOL_TAG, _BOOL_12, list("tTfF"))
    return loader


_Loader = _yaml12_loader()


@dataclass(frozen=True)
class Mark:
    """A position in a YAML file, shown as file:line:col."""

    file: str
    line: int  # 1-based
    col: int  # 1-based

    def __str__(self) -> str:
        return f"{shown(self.file, None)}:{self.line}:{self.col}"


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
        self.built = 0

    def _limit(self, node: yaml.Node, path: Path_, message: str) -> InputError:
        return InputError(f"{_mark(self.file, node)} {_dotted(path)}: {message}")

    def build(self, node: yaml.Node, path: Path_) -> Any:
        # Aliases share nodes (even cyclically), so the walk is bounded here, not by the text.
        self.built += 1
        if self.built > MAX_VALUES:
            raise self._limit(node, path, f"more than {MAX_VALUES} values (alias expansion?)")
        if len(path) > MAX_DEPTH:
            raise self._limit(node, path, f"nested deeper than {MAX_DEPTH} levels")
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
        if node.tag in (_INT_TAG, _FLOAT_TAG) and len(str(node.value)) > MAX_NUMBER_CHARS:
            raise self._limit(node, path, f"number longer than {MAX_NUMBER_CHARS} characters")
        return self.constructor.construct_object(node, deep=True)


def _dotted(path: Path_) -> str:
    # Keys are the user's: shown() keeps a "\n" in one from starting a fake message line.
    text = ""
    for part in path:
        key = shown(part, KEY_LIMIT)
        text += f"[{key}]" if isinstance(part, int) else (f".{key}" if text else key)
    return text or "(document)"


dotted = _dotted


def _check_events(text: str, file: str) -> None:
    """Refuse deep nesting and many aliases from the event stream, which is flat.

    Composing a 10,000-deep list recurses once per level (in C with CSafeLoader).
    """
    depth = aliases = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                where = _event_mark(file, event)
                raise InputError(f"{where}: nested deeper than {MAX_DEPTH} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                raise InputError(f"{_event_mark(file, event)}: more than {MAX_ALIASES} aliases")


def _event_mark(file: str, event: yaml.Event) -> Mark:
    mark = event.start_mark
    return Mark(file, mark.line + 1, mark.column + 1) if mark else Mark(file, 1, 1)


def parse(text: str, file: str) -> Located:
    """Parse one YAML document; malformed YAML raises InputError with its position."""
    try:
        _check_events(text, file)
        node = yaml.compose(text, Loader=_Loader)
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


def read_bounded(path: Path, limit: int | None = None) -> bytes:
    """A regular file's bytes, at most `limit` (default: input_limit()) of them; FIFOs,
    devices and bigger files refused.

    O_NONBLOCK keeps opening a FIFO from waiting for a writer; fstat then sees what it is.
    """
    hint = f"; {LIMIT_ENV} raises it" if limit is None else ""
    limit = input_limit() if limit is None else limit
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot open: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise InputError(f"{path}: is a directory, expected a file")
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"{path}: not a regular file (a FIFO, device or socket)")
        if info.st_size > limit:
            raise InputError(
                f"{path}: larger than the {limit}-byte limit ({info.st_size} bytes{hint})"
            )
        os.set_blocking(fd, True)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:  # the file may grow after fstat: read one byte past the limit
            chunk = os.read(fd, min(65536, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise InputError(f"{path}: larger than the {limit}-byte limit")
        return b"".join(chunks)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def load(path: Path) -> Located:
    """Parse the YAML file `path` with positions kept. InputError when it is too large,
    not a regular file, not UTF-8 or not valid YAML within the bounds."""
    data = read_bounded(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return parse(text, str(path))
