"""Rate limits stated exactly (`rate: "100/hour"`) or per second (`rps:`), as nginx and the
reference app get them, the warning where nginx cannot be exact, and the grammar the plan
and the app share (issue 14, "Exact rate limits")."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import yaml
from limits import parse
from pydantic import ValidationError
from refapp.settings import Settings

from scalectl.plan import prepare, render_files
from scalectl.plan.load import load_plan
from scalectl.plan.loadbalancer import RateLimit
from scalectl.plan.ratelimits import app_rate
from tests.conftest import EXAMPLES, Result, fixture_path
from tests.helpers.input_files import problems

MINIMAL = fixture_path("plans", "minimal.yaml").read_text()
PER_IP_LINE = 29  # where `per_ip:` lands below MINIMAL


def plan_text(per_ip: str, tiers: str = "") -> str:
    text = MINIMAL + f"load_balancer:\n  rate_limits:\n    per_ip: {per_ip}\n"
    return text + (f"    tiers:\n{tiers}" if tiers else "")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    return path


def rendered(path: Path, profile: str = "production") -> tuple[str, dict[str, Any], list[str]]:
    """nginx.conf, the api's environment in Compose and Kubernetes, and the plan's warnings."""
    prepared = prepare(path, profile)
    files = render_files(prepared)
    compose = yaml.safe_load(files["compose/docker-compose.yaml"])["services"]["api"]
    docs = [d for d in yaml.safe_load_all(files["kubernetes/api.yaml"]) if d]
    [deployment] = [d for d in docs if d["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    kubernetes = {e["name"]: e.get("value") for e in container["env"]}
    env = {"compose": compose["environment"], "kubernetes": kubernetes}
    return files["nginx/nginx.conf"].decode(), env, prepared.sizing.warnings


def limit_of(value: str) -> Fraction:
    """The app's limit for an env value, in requests per second, as refapp.ratelimit reads it."""
    item = parse(value)
    return Fraction(item.amount, item.get_expiry())


# (per_ip as written, nginx's rate, the app's RATE_LIMIT_PER_IP, the limit per second)
CASES = {
    "10/second": ('{rate: "10/second", burst: 20}', "10r/s", "10/second", Fraction(10)),
    "100/minute": ('{rate: "100/minute", burst: 20}', "100r/m", "100/minute", Fraction(100, 60)),
    "100/hour": ('{rate: "100/hour", burst: 20}', "2r/m", "100/hour", Fraction(100, 3600)),
    "rps 0.5": ("{rps: 0.5, burst: 20}", "30r/m", "30/minute", Fraction(1, 2)),
}
# rps 2.5: nginx exactly (150r/m, a smooth rate), the app per second rounded up (3/second),
# so its burst stays a second's count rather than a minute's 150.
SPLIT = ("{rps: 2.5, burst: 20}", "150r/m", "3/second")


@pytest.mark.parametrize("case", CASES)
def test_nginx_and_the_app_get_the_limit_as_written(tmp_path: Path, case: str) -> None:
    per_ip, nginx_rate, app_value, per_second = CASES[case]
    conf, env, _ = rendered(write(tmp_path, plan_text(per_ip)))
    assert f"limit_req_zone $binary_remote_addr zone=per_ip:10m rate={nginx_rate};" in conf
    assert "limit_req zone=per_ip burst=20 nodelay;" in conf  # burst as before
    for target in ("compose", "kubernetes"):
        assert env[target]["RATE_LIMIT_PER_IP"] == app_value, target
    # The app accepts the value and enforces exactly the plan's limit, never rounded.
    assert Settings(rate_limit_per_ip=app_value).rate_limit_per_ip == app_value
    assert limit_of(app_value) == per_second


def test_a_limit_nginx_cannot_state_is_rounded_looser_and_warned_about(tmp_path: Path) -> None:
    conf, env, warnings = rendered(write(tmp_path, plan_text('{rate: "100/hour"}')))
    # 2r/m is 120/hour: the smallest whole count per minute not stricter than 100/hour.
    assert "rate=2r/m;" in conf
    assert env["compose"]["RATE_LIMIT_PER_IP"] == "100/hour"
    assert warnings == [
        "load_balancer.rate_limits.per_ip: nginx counts per second or per minute only, so "
        "its edge limit is 2r/m, 1.2× looser than 100/hour; the app enforces 100/hour exactly"
    ]
    _, _, day = rendered(write(tmp_path, plan_text('{rate: "1000/day"}')))
    assert day == [
        "load_balancer.rate_limits.per_ip: nginx counts per second or per minute only, so "
        "its edge limit is 1r/m, 1.44× looser than 1000/day; the app enforces 1000/day exactly"
    ]


def test_an_rps_above_one_stays_per_second_in_the_app(tmp_path: Path) -> None:
    per_ip, nginx_rate, app_value = SPLIT
    conf, env, warnings = rendered(write(tmp_path, plan_text(per_ip)))
    assert f"zone=per_ip:10m rate={nginx_rate};" in conf
    assert env["compose"]["RATE_LIMIT_PER_IP"] == env["kubernetes"]["RATE_LIMIT_PER_IP"]
    assert env["compose"]["RATE_LIMIT_PER_IP"] == app_value
    assert limit_of(app_value) == Fraction(3)
    assert warnings == [
        "load_balancer.rate_limits.per_ip: rps 2.5 is rounded up to a whole count: the app's "
        "3/second (1.2×) looser; state it as `rate:` with a window that holds it exactly"
    ]


@pytest.mark.parametrize("case", ["10/second", "100/minute", "rps 0.5"])
def test_exact_limits_warn_of_nothing(tmp_path: Path, case: str) -> None:
    _, _, warnings = rendered(write(tmp_path, plan_text(CASES[case][0])))
    assert not [w for w in warnings if "rate_limits" in w]


def test_an_rps_no_whole_count_per_minute_is_rounded_looser_for_both(tmp_path: Path) -> None:
    # 0.01 rps is 0.6 a minute: both count 1 a minute, and the plan says so.
    conf, env, warnings = rendered(write(tmp_path, plan_text("{rps: 0.01}")))
    assert "rate=1r/m;" in conf
    assert env["compose"]["RATE_LIMIT_PER_IP"] == "1/minute"
    assert warnings == [
        "load_balancer.rate_limits.per_ip: rps 0.01 is rounded up to a whole count: nginx's "
        "1r/m (1.67×) and the app's 1/minute (1.67×) looser; state it as `rate:` with a "
        "window that holds it exactly"
    ]


def test_the_warning_reaches_scalectl_plan(cli: Callable[..., Result], tmp_path: Path) -> None:
    small = (EXAMPLES / "small.yaml").read_text()
    assert "per_ip: {rps: 10, burst: 20}" in small
    path = write(tmp_path, small.replace("{rps: 10,", '{rate: "100/hour",'))
    result = cli("plan", path, "-o", tmp_path / "out")
    assert result.code == 0, result.stderr
    assert "warning: load_balancer.rate_limits.per_ip: nginx counts per second" in result.stderr
    assert "1.2× looser than 100/hour" in result.stderr


def test_the_strictest_tier_compares_either_form_exactly(tmp_path: Path) -> None:
    """A request naming no known tier counts against the strictest tier: 1000/hour (0.28/s)
    here, below rps 0.5 and 100/minute (1.67/s)."""
    tiers = (
        "      premium: {rps: 0.5}\n"
        '      basic: {rate: "100/minute"}\n'
        '      free: {rate: "1000/hour"}\n'
    )
    conf, env, _ = rendered(write(tmp_path, plan_text("{rps: 10}", tiers)))
    assert 'map $http_x_api_tier $tier_free_key {\n        basic "";' in conf
    assert "limit_req_zone $tier_premium_key zone=tier_premium:10m rate=30r/m;" in conf
    assert "limit_req_zone $tier_basic_key zone=tier_basic:10m rate=100r/m;" in conf
    assert "limit_req_zone $tier_free_key zone=tier_free:10m rate=17r/m;" in conf
    app = env["kubernetes"]
    assert (app["RATE_LIMIT_TIER_PREMIUM"], app["RATE_LIMIT_TIER_BASIC"]) == (
        "30/minute",
        "100/minute",
    )
    assert app["RATE_LIMIT_TIER_FREE"] == "1000/hour"
    assert Settings(
        rate_limit_tier_premium=app["RATE_LIMIT_TIER_PREMIUM"],
        rate_limit_tier_basic=app["RATE_LIMIT_TIER_BASIC"],
        rate_limit_tier_free=app["RATE_LIMIT_TIER_FREE"],
    )


RATE_MESSAGE = (
    "must be a whole count per second, minute, hour or day, such as '100/minute' (no spaces; "
    "at most 11 digits)"
)
BAD_RATES = [
    '"100/hours"',
    '"0/minute"',
    '"01/minute"',
    '"100 / minute"',
    '"100 per minute"',
    '"5/2 hours"',
    '"100/Minute"',
    '"100/week"',
    '"1/year"',
    '"1e3/second"',
    '"-5/second"',
    '"123456789012/second"',
    '"100/minute;5/second"',
    '"100/minute\\n"',
    '"10r/s; include /etc/passwd"',
    '"\\u0661\\u0660/second"',  # Arabic-Indic digits
    '""',
]


@pytest.mark.parametrize("rate", BAD_RATES)
def test_a_bad_rate_is_one_line_naming_the_field(tmp_path: Path, rate: str) -> None:
    assert problems(tmp_path, plan_text(f"{{rate: {rate}}}")) == [
        f"{PER_IP_LINE}:20 load_balancer.rate_limits.per_ip.rate: {RATE_MESSAGE}"
    ]


def test_rate_is_a_string(tmp_path: Path) -> None:
    assert problems(tmp_path, plan_text("{rate: 100}")) == [
        f"{PER_IP_LINE}:20 load_balancer.rate_limits.per_ip.rate: must be a valid string"
    ]


def test_exactly_one_of_rps_or_rate(tmp_path: Path) -> None:
    both = plan_text('{rps: 10, rate: "10/second"}')
    assert problems(tmp_path, both) == [
        f"{PER_IP_LINE}:13 load_balancer.rate_limits.per_ip: give rps or rate, not both (a "
        "profile override that sets one must set the other to null)"
    ]
    neither = plan_text("{burst: 5}")
    assert problems(tmp_path, neither) == [
        f"{PER_IP_LINE}:13 load_balancer.rate_limits.per_ip: give rps (requests per second) or "
        "rate (such as '100/minute')"
    ]


def test_a_profile_override_switches_form_by_nulling_the_other(tmp_path: Path) -> None:
    base = plan_text('{rate: "100/hour", burst: 20}')
    override = (
        "profiles:\n"
        "  local:\n"
        "    upstreams: loopback\n"
        "    listen: 127.0.0.1:8080\n"
        "    overrides:\n"
        "      load_balancer:\n"
        "        rate_limits:\n"
        "          per_ip: {rps: 2000}\n"
    )
    # Merged into the plan's per_ip, rps would join rate: refused, with the way out.
    [problem] = problems(tmp_path, base + override, profile="local")
    assert "per_ip: give rps or rate, not both" in problem
    path = write(tmp_path, base + override.replace("{rps: 2000}", "{rps: 2000, rate: null}"))
    assert load_plan(path, "local").plan.load_balancer.rate_limits.per_ip == RateLimit(
        rps=2000, burst=20
    )
    conf, env, _ = rendered(path, "local")
    assert "rate=2000r/s;" in conf
    assert env["compose"]["RATE_LIMIT_PER_IP"] == "2000/second"
    assert rendered(path)[1]["compose"]["RATE_LIMIT_PER_IP"] == "100/hour"  # production


SAMPLES = [
    "1/second",
    "10/second",
    "100/minute",
    "100/hour",
    "1000/day",
    "99999999999/second",  # 11 digits
    "123456789012/second",
    "0/second",
    "07/minute",
    "100/hours",
    "100/week",
    "1/month",
    "1/year",
    "5 per minute",
    "5/2 hours",
    "5/minute;1/second",
    "5/MINUTE",
    " 5/minute",
    "5/minute\n",
    "\u0665/minute",
    "",
]


@pytest.mark.parametrize("value", SAMPLES)
def test_the_plan_and_the_app_accept_the_same_rates(value: str) -> None:
    """The plan's `rate` and the app's RATE_LIMIT_* settings are one grammar, and the app's
    parser (limits) reads each accepted value as the plan counts it."""
    try:
        limit = RateLimit(rate=value)
    except ValidationError:
        limit = None
    try:
        Settings(rate_limit_per_ip=value)
        app_accepts = True
    except ValidationError:
        app_accepts = False
    assert (limit is not None) == app_accepts
    if limit is not None:
        assert limit_of(value) == limit.per_second


@pytest.mark.parametrize("rps", [1e-9, 0.01, 0.1, 0.5, 2.345, 1, 1e6, 999_999_999.5, 1e9])
def test_every_rps_renders_a_value_the_app_accepts(rps: float) -> None:
    value = app_rate(RateLimit(rps=rps))
    assert Settings(rate_limit_per_ip=value).rate_limit_per_ip == value
    # Never stricter than the plan, and looser only by rounding up to a whole count: per
    # second above 1, per minute below.
    limit = RateLimit(rps=rps).per_second
    step = Fraction(1) if limit >= 1 else Fraction(1, 60)
    assert limit <= limit_of(value) < limit + step
