from __future__ import annotations

import pytest

from scalectl.errors import InputError
from scalectl.yamlsource import Mark, dotted, parse


def test_positions_of_values_and_keys() -> None:
    doc = parse("a:\n  b: 1\n  c:\n    - x\n    - {d: 2}\n", "p.yaml")
    assert doc.data == {"a": {"b": 1, "c": ["x", {"d": 2}]}}
    assert doc.values[("a", "b")] == Mark("p.yaml", 2, 6)
    assert doc.keys[("a", "b")] == Mark("p.yaml", 2, 3)
    assert doc.values[("a", "c", 1, "d")] == Mark("p.yaml", 5, 11)


def test_mark_walks_up_to_the_nearest_known_parent() -> None:
    doc = parse("a:\n  b: 1\n", "p.yaml")
    assert doc.mark(("a", "missing")) == Mark("p.yaml", 2, 3)


def test_duplicate_keys_are_errors() -> None:
    with pytest.raises(InputError) as exc:
        parse("a: 1\nb: 2\na: 3\n", "p.yaml")
    assert exc.value.lines == ("p.yaml:3:1 a: duplicate key (first at line 1)",)


def test_malformed_yaml_names_the_position() -> None:
    with pytest.raises(InputError) as exc:
        parse("a: [1, 2\nb: 3\n", "p.yaml")
    assert exc.value.message.startswith("p.yaml:2:")
    assert "malformed YAML" in exc.value.message


def test_merge_keys_are_resolved() -> None:
    doc = parse("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n", "p.yaml")
    assert doc.data["other"] == {"x": 1, "y": 2}


def test_dotted_paths() -> None:
    assert dotted(("services", "api", "replicas", "min")) == "services.api.replicas.min"
    assert dotted(("workers", "w", "queues", 0, "name")) == "workers.w.queues[0].name"
    assert dotted(()) == "(document)"


def test_yaml_1_2_booleans_only_true_and_false() -> None:
    # YAML 1.1 (PyYAML's default) reads yes/no/on/off as booleans, keys included.
    doc = parse(
        "on: [error]\nyes: no\nOff: x\nflags: [true, True, TRUE, false, False, FALSE, y, n]\n",
        "p.yaml",
    )
    assert doc.data == {
        "on": ["error"],
        "yes": "no",
        "Off": "x",
        "flags": [True, True, True, False, False, False, "y", "n"],
    }
    assert doc.keys[("on",)] == Mark("p.yaml", 1, 1)
