"""One escape function per target language a plan string can reach (issue 11).

The plan schema already refuses strings that do not fit their field's pattern; these are
the second line of defence, so a string that slips past a pattern stays one value.
Templates use them as Jinja filters (registered in scalectl.plan.render).
"""

from __future__ import annotations

import json
import re

# Line breaks for YAML 1.1 parsers (PyYAML, Go's yaml.v2/v3) besides \n and \r: a raw
# U+2028 in a plan string once started a new Alertmanager key.
_LINE_BREAKS = frozenset("\x85\u2028\u2029")
_GO_LEFT_DELIM = re.compile(r"\{(?=\{|$)")


def _escape_char(char: str) -> str:
    if char in '"\\':
        return "\\" + char
    if char == "\n":
        return "\\n"
    if ord(char) < 0x20 or char == "\x7f" or char in _LINE_BREAKS:
        return f"\\u{ord(char):04x}"
    return char


def promql_label(value: str) -> str:
    """The inside of a double-quoted PromQL label value (Go string escapes)."""
    return "".join(_escape_char(char) for char in value)


def go_template_text(value: str) -> str:
    """Literal text in a Go template (Prometheus annotations): no "{{" can open an action.

    Each "{" that starts a "{{" (or ends the text, and so could meet a "{" after it) is
    written as the action {{"{"}}, which prints one "{".
    """
    return _GO_LEFT_DELIM.sub('{{"{"}}', value)


# prometheus-adapter's metricsQuery is a Go template with "<<" and ">>" as delimiters.
ADAPTER_LEFT_DELIM_ACTION = '<<"<">>'
_ADAPTER_LEFT_DELIM = re.compile(r"<(?=<|$)")


def adapter_template_text(value: str) -> str:
    """Literal text in a prometheus-adapter query template: no "<<" can open an action.

    Each "<" that starts a "<<" (or ends the text) is written as the action <<"<">>.
    """
    return _ADAPTER_LEFT_DELIM.sub(ADAPTER_LEFT_DELIM_ACTION, value)


# An escaped backslash, or a surrogate pair as json.dumps writes a character past U+FFFF.
_PAIR_OR_BACKSLASH = re.compile(r"(\\\\)|\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})")


def _astral(match: re.Match[str]) -> str:
    if match[1]:
        return match[1]
    high, low = int(match[2], 16), int(match[3], 16)
    return chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))


def json_value(value: object) -> str:
    """A JSON literal; a string is also a valid YAML double-quoted scalar."""
    # ensure_ascii escapes U+2028/U+2029 and every other non-ASCII character, but writes
    # one past U+FFFF as a surrogate pair, which YAML refuses ("invalid Unicode character
    # escape", found by tests/hostile/test_properties.py): such a character stays itself.
    return _PAIR_OR_BACKSLASH.sub(_astral, json.dumps(value, ensure_ascii=True))


def json_str(value: str) -> str:
    """A JSON string literal, quotes included."""
    return json_value(value)


def yaml_str(value: str) -> str:
    """A YAML scalar that reads back as exactly this string, on one line."""
    return json_str(value)
