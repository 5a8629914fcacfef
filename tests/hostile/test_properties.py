"""Random strings in every plan string that reaches a rendered file (issue 11, "Rendered
strings"): the plan is refused with a located message, or every rendered file keeps the
structure of the baseline render: the same nginx directives and nesting, the same YAML and
JSON key trees, the same alert names, PromQL skeletons and Go template actions.

Reproducible: derandomized, so CI sees the same examples as a laptop.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from scalectl.errors import InputError
from scalectl.plan.load import validate
from scalectl.plan.patterns import ENDPOINT_KEY, ENV_NAME, SERVER_NAME, TTL_KIND, URL
from scalectl.plan.render import Files, render
from scalectl.plan.sizing import size
from scalectl.usertext import shown
from scalectl.yamlsource import parse
from tests.conftest import EXAMPLES, ROOT
from tests.hostile.structure import differences, parser_for, rule_names

Plan = dict[str, Any]
PLAN_FILE = "plan.yaml"
# (plan, profile): the reference app on loopback, a multi-service plan for production.
BASES = {
    "reference-app": (ROOT / "templates" / "plan" / "reference-app.yaml", "local"),
    "multi-tier": (EXAMPLES / "multi-tier.yaml", "production"),
}
DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"

# Pieces that break out of a quoting or a line in one of the target languages.
HOSTILE = [
    "\n",
    "\r",
    "\r\n",
    "\u2028",
    "\u2029",
    "\x85",
    "\x00",
    "\x1b[31m",
    "\u202e",
    "\ufeff",
    '"',
    "'",
    "`",
    "{",
    "}",
    "{{",
    "}}",
    "{{ .Labels }}",
    "{{ end }}",
    ";",
    "#",
    "$",
    "$$",
    "$(X)",
    "${X}",
    "\\",
    "\\n",
    " ",
    "\t",
    ":",
    ": ",
    "- ",
    "[",
    "]",
    "&a",
    "*a",
    "!!str",
    "%",
    ",",
    "|",
    ">",
    "=",
    "~",
    "@",
    "/",
    "..",
    "*.",
    "_",
    "-",
    ".",
    "} or vector(1) #",
    "_; include /etc/passwd; #",
    "\n- alert: X\n",
    "\u2028templates: [x]",
]


def hostile(valid: str | None) -> st.SearchStrategy[str]:
    """Strings for one field: random text, hostile pieces, and valid text with pieces added."""
    pieces = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=4))
    glued = st.lists(pieces, min_size=1, max_size=10).map("".join)
    options: list[st.SearchStrategy[str]] = [
        st.text(max_size=40),  # any code point but surrogates: controls, U+2028, bidi
        glued,
        st.text(min_size=300, max_size=1500),  # long, still far under the file limit
    ]
    if valid is not None:
        ok = st.from_regex(re.compile(valid, re.ASCII), fullmatch=True)
        options += [ok, ok, st.tuples(ok, glued).map("".join), st.tuples(glued, ok).map("".join)]
    return st.one_of(options)


@dataclass(frozen=True)
class Field:
    """One plan string: where it is, whether it names something, what a valid one is."""

    put: Callable[[Plan, str, str], str | None]  # (plan, profile, value) -> replaced name
    valid: str | None
    names: bool = False  # a name the rendered files use as a key or a file name


def _rename(mapping: dict[str, Any], value: str) -> str:
    old = next(iter(mapping))
    assume(value not in mapping)
    items = [(value if k == old else k, v) for k, v in mapping.items()]
    mapping.clear()
    mapping.update(items)
    return old


def _set(*path: str) -> Callable[[Plan, str, str], None]:
    def put(plan: Plan, _profile: str, value: str) -> None:
        node = plan
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value

    return put


def _first(section: str, *path: str) -> Callable[[Plan, str, str], None]:
    def put(plan: Plan, _profile: str, value: str) -> None:
        node = next(iter(plan[section].values()))
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value

    return put


def _profile(key: str) -> Callable[[Plan, str, str], None]:
    def put(plan: Plan, profile: str, value: str) -> None:
        plan["profiles"][profile][key] = value

    return put


def _route(plan: Plan, _profile: str, value: str) -> None:
    # A route that takes over an SLO endpoint moves its alert to another group: a real
    # change of structure, not an injected one.
    assume(not any(key.partition(" ")[2].startswith(value) for key in plan["slo"]["endpoints"]))
    plan["services"]["extra"]["route"] = value


def _tier_rate(plan: Plan, _profile: str, value: str) -> None:
    tier = next(iter(plan["load_balancer"]["rate_limits"]["tiers"].values()))
    tier.pop("rps", None)
    tier["rate"] = value


FIELDS: dict[str, Field] = {
    "server_name": Field(_profile("server_name"), SERVER_NAME),
    "listen": Field(_profile("listen"), r"127\.0\.0\.1:[1-9][0-9]{3}"),
    "plan.name": Field(_set("name"), DNS_LABEL, names=True),
    "namespace": Field(_set("namespace"), DNS_LABEL, names=True),
    "service name": Field(lambda p, _, v: _rename(p["services"], v), DNS_LABEL, names=True),
    "worker name": Field(lambda p, _, v: _rename(p["workers"], v), DNS_LABEL, names=True),
    "queue name": Field(
        lambda p, _, v: next(iter(p["workers"].values()))["queues"][0].update(name=v),
        DNS_LABEL,
        names=True,
    ),
    "service env key": Field(
        lambda p, _, v: _rename(next(iter(p["services"].values()))["env"], v),
        ENV_NAME,
        names=True,
    ),
    "service env value": Field(_first("services", "env", "EXTRA_SETTING"), r".{0,40}"),
    "worker env key": Field(
        lambda p, _, v: _rename(next(iter(p["workers"].values()))["env"], v),
        ENV_NAME,
        names=True,
    ),
    "worker env value": Field(_first("workers", "env", "EXTRA_SETTING"), r".{0,40}"),
    "ttl key": Field(lambda p, _, v: _rename(p["cache"]["ttl_seconds"], v), TTL_KIND, names=True),
    "endpoint key": Field(
        lambda p, _, v: _rename(p["slo"]["endpoints"], v), ENDPOINT_KEY, names=True
    ),
    "tier name": Field(
        lambda p, _, v: _rename(p["load_balancer"]["rate_limits"]["tiers"], v),
        r"[a-z][a-z0-9_]{0,20}",
        names=True,
    ),
    "tier header": Field(_set("load_balancer", "rate_limits", "tier_header"), r"X-[A-Za-z0-9-]+"),
    # Valid rates above every base tier's and exact in nginx: a new strictest tier (nginx's
    # maps) or a rounding warning (sizing.json) would be real changes of structure.
    "tier rate": Field(_tier_rate, r"[1-9][0-9]{4,10}/(second|minute)"),
    "page webhook": Field(_set("alerting", "page_webhook_url"), URL),
    "ticket webhook": Field(_set("alerting", "ticket_webhook_url"), URL),
    "runbook url": Field(_set("alerting", "runbook_base_url"), URL),
    "service image": Field(_first("services", "image"), r"ghcr\.io/[a-z]{1,8}/[a-z]{1,8}:[0-9.]+"),
    "service route": Field(_route, r"/[A-Za-z0-9/_.-]{0,20}"),
    "readiness path": Field(_first("services", "health", "readiness"), r"/ready[a-z/]{0,10}"),
    "worker image": Field(_first("workers", "image"), r"[a-z]{1,8}:[0-9]\.[0-9]"),
    "cpu limit": Field(_first("services", "resources", "limits", "cpu"), r"[1-4]|[1-9]00m"),
    "memory limit": Field(_first("services", "resources", "limits", "memory"), r"[1-4]Gi"),
    "body size": Field(_set("load_balancer", "client_max_body_size"), r"[1-9][0-9]?[km]"),
    "kubernetes version": Field(_set("kubernetes_version"), r"1\.[23][0-9]\.[0-9]"),
    "warmup": Field(_set("slo", "warmup"), r"[1-9][0-9]?s"),
    "database image": Field(_set("database", "image"), r"postgres:1[5-7]\.[0-9]"),
    "cache image": Field(_set("cache", "image"), r"redis:7\.[0-9]"),
    "nginx image": Field(_set("load_balancer", "image"), r"nginx:1\.2[0-9]"),
}


def base_plan(name: str) -> Plan:
    """The example, plus the env entries the env fields replace (present in the baseline)."""
    plan: Plan = yaml.safe_load(BASES[name][0].read_text())
    first = next(iter(plan["services"].values()))
    plan["services"]["extra"] = {**copy.deepcopy(first), "route": "/extra/"}  # for "service route"
    next(iter(plan["services"].values()))["env"] = {"EXTRA_SETTING": "plain"}
    next(iter(plan["workers"].values()))["env"] = {"EXTRA_SETTING": "plain"}
    return plan


def user_names(plan: Plan) -> set[str]:
    """Names the plan gives that rendered files use as keys, directives or alert names."""
    names = {plan["name"], *plan["services"], *plan["workers"], *plan["profiles"]}
    for section in ("services", "workers"):
        for spec in plan[section].values():
            names |= set(spec.get("env", {}))
    for worker in plan["workers"].values():
        names |= {q["name"] for q in worker["queues"]}
    names |= set(plan["cache"]["ttl_seconds"]) | set(plan["slo"]["endpoints"])
    names |= set(plan["load_balancer"]["rate_limits"]["tiers"])
    return names


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def render_text(text: str, profile: str) -> Files:
    loaded = validate(parse(text, PLAN_FILE), profile, Path(PLAN_FILE))
    return render(loaded, size(loaded.plan, profile))


BASELINES: dict[str, Files] = {}


def baseline(name: str) -> Files:
    if name not in BASELINES:
        BASELINES[name] = render_text(
            yaml.safe_dump(base_plan(name), sort_keys=False), BASES[name][1]
        )
    return BASELINES[name]


def assert_located(error: InputError) -> None:
    lines = [error.message, *error.lines]
    assert any(re.match(rf"{PLAN_FILE}:\d+:\d+ ", line) for line in lines), lines
    for line in lines:  # user text in messages is escaped and cut (scalectl.usertext)
        assert shown(line, None) == line, line
        assert len(line) < 1000, line


def assert_same_structure(name: str, files: Files, loose: Callable[[str], bool]) -> None:
    base = baseline(name)
    assert len(files) == len(base), sorted(set(files) ^ set(base))
    for (path, text), (base_path, base_text) in zip(
        sorted(files.items()), sorted(base.items()), strict=True
    ):
        assert path == base_path or loose(Path(path).stem), (path, base_path)
        if text == base_text:
            continue
        parse_items = parser_for(path)
        found = differences(parse_items(base_text.decode()), parse_items(text.decode()), loose)
        assert not found, (path, found[:3])
        if "rules" in path and "test" not in path:
            names = differences_in_names(base_text.decode(), text.decode(), loose)
            assert not names, (path, names[:3])


def differences_in_names(
    base: str, other: str, loose: Callable[[str], bool]
) -> list[tuple[str, str]]:
    a, b = rule_names(base), rule_names(other)
    if len(a) != len(b):
        return [("count", f"{len(a)} != {len(b)}")]
    return [(x, y) for x, y in zip(a, b, strict=True) if x != y and not (loose(x) and loose(y))]


def check(name: str, field: str, value: str) -> None:
    spec = FIELDS[field]
    plan = base_plan(name)
    profile = BASES[name][1]
    spec.put(plan, profile, value)
    text = yaml.safe_dump(plan, sort_keys=False)
    try:
        files = render_text(text, profile)
    except InputError as error:
        assert_located(error)
        return
    names = {_norm(n) for n in user_names(base_plan(name))}
    if spec.names:
        names.add(_norm(value))
    names.discard("")

    def loose(text: str) -> bool:
        normal = _norm(text)
        return any(n in normal for n in names)

    assert_same_structure(name, files, loose)


PROFILE = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.mark.parametrize("name", sorted(BASES))
def test_random_strings_never_change_a_rendered_files_structure(name: str) -> None:
    @PROFILE
    @given(st.data())
    def run(data: st.DataObject) -> None:
        field = data.draw(st.sampled_from(sorted(FIELDS)), label="field")
        value = data.draw(hostile(FIELDS[field].valid), label="value")
        check(name, field, value)

    run()


def test_the_baselines_parse_and_are_not_trivial() -> None:
    for name in BASES:
        files = baseline(name)
        nginx = parser_for("nginx.conf")(files["nginx/nginx.conf"].decode())
        assert sum(item.kind == "block" for item in nginx) >= 5
        assert rule_names(files["prometheus/alerts.rules.yml"].decode())


def test_a_character_past_u_ffff_stays_valid_yaml() -> None:
    """Found by the property test: json.dumps wrote U+10000 as a surrogate pair, which
    YAML refuses, so an env value made the Compose and Kubernetes files unreadable."""
    from scalectl.plan.escape import json_value

    for text in ["\U00010000", "\\\U0001f600", "a\\ud800\\udc00b", "x\u2028\ud7ff"]:
        literal = json_value(text)
        assert yaml.load(f"k: {literal}", Loader=yaml.CSafeLoader) == {"k": text}
        assert json.loads(literal) == text
    plan = base_plan("multi-tier")
    FIELDS["worker env value"].put(plan, "production", "\U00010000")
    files = render_text(yaml.safe_dump(plan, sort_keys=False), "production")
    assert_same_structure("multi-tier", files, lambda name: False)
