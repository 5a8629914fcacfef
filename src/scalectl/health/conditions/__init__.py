"""Gatus-style conditions (`[STATUS] == 200`, `[BODY].status == pass`, `len([BODY].checks) >
0`, `[METRIC].queue_depth{queue="analyse"} < 100`, `rate([METRIC].x_total) < 5`), read by a
tokenizer and a recursive-descent parser and evaluated without `eval`: a condition can only
read the response it is checked against. docs/health.md has the syntax and the rules.

syntax.py (the tree, the vocabulary, ConditionError), tokens.py (the tokenizer),
parser.py (the parser), observation.py (what a probe saw), evaluate.py (the evaluator)."""

from __future__ import annotations

from scalectl.health.conditions.evaluate import ConditionResult, evaluate
from scalectl.health.conditions.observation import Observation
from scalectl.health.conditions.parser import parse_condition
from scalectl.health.conditions.syntax import (
    Condition,
    ConditionError,
    reads,
    selectors,
    uses_rates,
)

__all__ = [
    "Condition",
    "ConditionError",
    "ConditionResult",
    "Observation",
    "evaluate",
    "parse_condition",
    "reads",
    "selectors",
    "uses_rates",
]
