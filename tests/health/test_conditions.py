"""Gatus-style conditions: parsing, evaluation, and the exact errors for malformed ones."""

from __future__ import annotations

import json

import pytest

from scalectl.errors import ExitCode
from scalectl.health.conditions import (
    ConditionError,
    Observation,
    evaluate,
    parse_condition,
    selectors,
    uses_rates,
)

HEALTH = {
    "status": "warn",
    "releaseId": "r-1",
    "checks": {
        "redis:responseTime": [{"status": "warn", "observedValue": 1000.5}],
        "postgresql:responseTime": [{"status": "pass", "observedValue": 1.2}],
    },
    "items": [{"id": 7, "name": "a"}, {"id": 8}],
    "count": "12",
    "ok": True,
    "none": None,
}
METRICS = b"""# TYPE http_requests_total counter
http_requests_total{route="/api",status="200"} 90
http_requests_total{route="/api",status="503"} 10
http_requests_total{route="/health/ready",status="503"} 50
# TYPE queue_depth gauge
queue_depth{queue="analyse"} 7
queue_depth{queue="render"} 3
# TYPE db_pool_requests_waiting gauge
db_pool_requests_waiting 0
"""


def body_obs(body: object = HEALTH, status: int = 200, ms: float = 42.0) -> Observation:
    raw = json.dumps(body).encode() if not isinstance(body, bytes) else body
    return Observation(
        connected=True,
        status=status,
        elapsed_ms=ms,
        body=raw,
        content_type="application/health+json",
    )


def check(text: str, obs: Observation) -> tuple[bool, str]:
    result = evaluate(parse_condition(text), obs)
    return result.ok, result.detail


@pytest.mark.parametrize(
    ("condition", "ok", "detail"),
    [
        ("[STATUS] == 200", True, "[STATUS] (200) == 200"),
        ("[STATUS] != 200", False, "[STATUS] (200) != 200"),
        ("[STATUS] < 300", True, "[STATUS] (200) < 300"),
        ("[STATUS] >= 500", False, "[STATUS] (200) >= 500"),
        ("[STATUS] == any(200, 204)", True, "[STATUS] (200) == any(200, 204)"),
        ("[RESPONSE_TIME] < 300", True, "[RESPONSE_TIME] (42) < 300"),
        ("[RESPONSE_TIME] <= 41.5", False, "[RESPONSE_TIME] (42) <= 41.5"),
        ("[RESPONSE_TIME] > 10", True, "[RESPONSE_TIME] (42) > 10"),
        ("[CONNECTED] == true", True, "[CONNECTED] (true) == true"),
        ("[BODY].status == pass", False, "[BODY].status (warn) == pass"),
        ("[BODY].status == pat(w*)", True, "[BODY].status (warn) == pat(w*)"),
        ("[BODY].status != 'fail'", True, "[BODY].status (warn) != 'fail'"),
        ("len([BODY].checks) > 0", True, "len([BODY].checks) (2) > 0"),
        ("len([BODY].items) == 2", True, "len([BODY].items) (2) == 2"),
        ("[BODY].items[0].id == 7", True, "[BODY].items[0].id (7) == 7"),
        ('[BODY].checks."redis:responseTime"[0].status == warn', True, None),
        ("[BODY].checks.redis:responseTime[0].observedValue < 1000", False, None),
        ("[BODY].count > 10", True, "[BODY].count (12) > 10"),  # numeric strings compare
        ("[BODY].ok == true", True, "[BODY].ok (true) == true"),
        ("[BODY].none == null", True, "[BODY].none (null) == null"),
        ("has([BODY].none) == true", True, "has([BODY].none) (true) == true"),
        ("has([BODY].errors) == false", True, "has([BODY].errors) (false) == false"),
        ("[RESPONSE_TIME] * 2 + 16 == 100", True, "[RESPONSE_TIME] * 2 + 16 (100) == 100"),
        ("([RESPONSE_TIME] - 2) / 4 == 10", True, "([RESPONSE_TIME] - 2) / 4 (10) == 10"),
    ],
)
def test_evaluates_against_a_health_body(condition: str, ok: bool, detail: str | None) -> None:
    got_ok, got_detail = check(condition, body_obs())
    assert got_ok is ok, got_detail
    if detail is not None:
        assert got_detail == detail


@pytest.mark.parametrize(
    ("condition", "ok", "detail"),
    [
        ('[METRIC].queue_depth{queue="analyse"} < 100', True, None),
        ("[METRIC].queue_depth == 10", True, "[METRIC].queue_depth (10) == 10"),  # a sum
        ('[METRIC].queue_depth{queue=~"ana.*"} == 7', True, None),
        ('[METRIC].queue_depth{queue!~"ana.*"} == 3', True, None),
        ('[METRIC].queue_depth{queue!="render"} == 7', True, None),
        ('[METRIC].queue_depth{queue=~"ana"} == 0', False, None),  # regexes are anchored
        ("[METRIC].db_pool_requests_waiting < 5", True, None),
        (
            '[METRIC].http_requests_total{status=~"5..",route!~"/health.*"} / '
            '[METRIC].http_requests_total{route!~"/health.*"} <= 0.1',
            True,
            '[METRIC].http_requests_total{status=~"5..",route!~"/health.*"} / '
            '[METRIC].http_requests_total{route!~"/health.*"} (0.1) <= 0.1',
        ),
        (
            '[METRIC].http_requests_total{status=~"5.."} / [METRIC].http_requests_total < 0.1',
            False,
            None,
        ),
    ],
)
def test_evaluates_metric_conditions(condition: str, ok: bool, detail: str | None) -> None:
    obs = Observation(connected=True, status=200, body=METRICS, content_type="text/plain")
    got_ok, got_detail = check(condition, obs)
    assert got_ok is ok, got_detail
    if detail is not None:
        assert got_detail == detail


def test_counter_with_no_series_is_zero_and_ratio_of_nothing_is_zero() -> None:
    obs = Observation(connected=True, status=200, body=b"# TYPE x gauge\nx 1\n")
    assert check("[METRIC].http_requests_total == 0", obs)[0]
    ratio = '[METRIC].errors_total{status=~"5.."} / [METRIC].errors_total <= 0.01'
    assert check(ratio, obs) == (True, f"{ratio.replace(' <=', ' (0) <=')}")


@pytest.mark.parametrize(
    ("condition", "body", "detail"),
    [
        ("[BODY].nope == 1", HEALTH, "[BODY].nope == 1: [BODY] has no key 'nope'"),
        (
            "[BODY].items[5].id == 1",
            HEALTH,
            "[BODY].items[5].id == 1: [BODY].items has 2 items, no [5]",
        ),
        ("[BODY].status.x == 1", HEALTH, "[BODY].status.x == 1: [BODY].status is not an object"),
        ("[BODY].status == 1", b"not json", "[BODY].status == 1: the body is not JSON"),
        ("[BODY].status < 3", HEALTH, "[BODY].status < 3: '<' compares numbers; got warn"),
        (
            "len([BODY].ok) > 0",
            HEALTH,
            "len([BODY].ok) > 0: len() needs text, a list or an object, got true",
        ),
        (
            '[METRIC].queue_depth{queue="x"} < 1',
            METRICS,
            '[METRIC].queue_depth{queue="x"} < 1: no series matches queue_depth{queue="x"}',
        ),
        ("[METRIC].nope < 1", METRICS, "[METRIC].nope < 1: no metric named 'nope'"),
        (
            "[METRIC].queue_depth / [METRIC].db_pool_requests_waiting < 1",
            METRICS,
            "[METRIC].queue_depth / [METRIC].db_pool_requests_waiting < 1: division by zero in "
            "[METRIC].queue_depth / [METRIC].db_pool_requests_waiting",
        ),
        (
            "[METRIC].x < 1",
            b"x{a=b} 1\n",
            "[METRIC].x < 1: the body is not the Prometheus text format "
            "(line 1: expected a quoted value for label 'a')",
        ),
    ],
)
def test_unresolvable_values_fail_with_a_reason(condition: str, body: object, detail: str) -> None:
    assert check(condition, body_obs(body)) == (False, detail)


def test_without_a_connection_only_connection_placeholders_resolve() -> None:
    obs = Observation(connected=False, elapsed_ms=5, error="connection refused")
    assert check("[CONNECTED] == false", obs) == (True, "[CONNECTED] (false) == false")
    assert check("[STATUS] == 200", obs) == (False, "[STATUS] (0) == 200")
    assert check("[BODY].status == pass", obs) == (
        False,
        "[BODY].status == pass: no response (connection refused)",
    )
    assert check("has([BODY].status) == false", obs)[0]


def test_raw_body_and_selectors_are_exposed() -> None:
    obs = Observation(connected=True, status=200, body=b"ok\n", content_type="text/plain")
    assert check("[BODY] == ok", obs) == (True, "[BODY] (ok) == ok")
    assert check("len([BODY]) == 2", obs)[0]
    cond = parse_condition('[METRIC].a{x="1"} + [METRIC].b > 0')
    assert [str(s) for s in selectors(cond)] == ['a{x="1"}', "b"]


@pytest.mark.parametrize(
    ("text", "column", "reason"),
    [
        ("", 1, "empty condition; expected something like [STATUS] == 200"),
        ("[STATUS]", 9, "missing a comparison (==, !=, <, <=, >, >=)"),
        ("[STATUS] = 200", 10, "unknown operator '='; use == to compare"),
        ("[STATUS] ! 200", 10, "unknown operator '!'; use != to compare"),
        ("[STATUS] == ", 13, "missing a value after '=='"),
        ("[STATUS] 200", 10, "expected a comparison (==, !=, <, <=, >, >=), got '200'"),
        ("[STATUS] == 200 == 1", 17, "only one comparison per condition; unexpected '=='"),
        ("[STATUS] == 200 x", 17, "unexpected 'x' after the condition"),
        (
            "[FOO] == 1",
            1,
            "unknown placeholder [FOO]; expected [STATUS], [RESPONSE_TIME], [CONNECTED], "
            "[BODY], [METRIC], [CERTIFICATE_EXPIRATION], [DNS_RCODE]",
        ),
        ("[status] == 1", 1, "unknown placeholder [status]; did you mean [STATUS]?"),
        ("[1] == 1", 1, "expected a placeholder such as [STATUS] or [BODY]"),
        ("[STATUS].code == 1", 9, "[STATUS] has no fields; only [BODY] takes a path"),
        ("[BODY]. == 1", 8, "expected a key after '.'"),
        ("[BODY].a[x] == 1", 9, "expected a list index such as [0]"),
        ("[BODY] ] == 1", 8, "unexpected ']'"),
        ("[BODY].status == 'pass", 18, "unterminated string (missing closing ')"),
        ("[RESPONSE_TIME] < 300ms", 19, "'<' compares numbers; '300ms' is not a number"),
        ("[RESPONSE_TIME] + fast > 1", 19, "'+' needs numbers; 'fast' is not one"),
        ("[RESPONSE_TIME] * > 1", 19, "expected a value, got '>'"),
        ("len([BODY]", 11, "missing ')' to close len("),
        ("([STATUS] == 200", 11, "missing ')'"),
        ("lenn([BODY]) > 1", 1, "unknown function 'lenn'; did you mean len()?"),
        ("len([BODY], [BODY]) > 1", 1, "len() takes exactly one argument"),
        ("has(x) == true", 1, "has() takes a placeholder such as has([BODY].errors)"),
        ("[STATUS] == pat([BODY])", 13, "pat() takes a pattern such as pat(*pass*)"),
        ("[STATUS] == any()", 13, "any() needs at least one value"),
        ("[STATUS] < any(1, 2)", 12, "any() can only be compared with == or !=, not '<'"),
        ("200 == 200", 1, "compares two constants; use a placeholder such as [STATUS]"),
        ("[METRIC] < 1", 9, '[METRIC] needs a metric: [METRIC].name{label="value"}'),
        ("[METRIC].1x < 1", 10, "[METRIC]: expected a metric name such as http_requests_total"),
        ('[METRIC].x{a="b} < 1', 14, "[METRIC]: unterminated quoted value"),
        ("[METRIC].x{a} < 1", 13, "[METRIC]: expected =, !=, =~ or !~ after label 'a'"),
        ("[METRIC].x{a=b} < 1", 14, "[METRIC]: expected a quoted value for label 'a'"),
        ('[METRIC].x{a="b" c="d"} < 1', 18, "[METRIC]: expected ',' or '}' after a label value"),
        (
            '[METRIC].x{a=~"("} < 1',
            15,
            "[METRIC]: label 'a': invalid regular expression (missing ), unterminated "
            "subpattern at position 0)",
        ),
    ],
)
def test_malformed_conditions_say_what_and_where(text: str, column: int, reason: str) -> None:
    with pytest.raises(ConditionError) as info:
        parse_condition(text)
    assert info.value.message == f'"{text}", column {column}: {reason}'
    assert (info.value.column, info.value.reason) == (column, reason)
    assert info.value.exit_code == ExitCode.BAD_INPUT


LATER = b"""# TYPE http_requests_total counter
http_requests_total{route="/api",status="200"} 140
http_requests_total{route="/api",status="503"} 15
http_requests_total{route="/api",status="500"} 2
http_requests_total{route="/health/ready",status="503"} 50
# TYPE queue_depth gauge
queue_depth{queue="analyse"} 7
"""


def scrapes(first: bytes, second: bytes, seconds: float = 5.0) -> Observation:
    earlier = Observation(connected=True, status=200, body=first, taken_at=100.0)
    return Observation(
        connected=True, status=200, body=second, taken_at=100.0 + seconds, previous=earlier
    )


@pytest.mark.parametrize(
    ("condition", "ok", "detail"),
    [
        (
            '[METRIC].http_requests_total{status=~"5.."} == 67',
            True,
            '[METRIC].http_requests_total{status=~"5.."} (67) == 67',
        ),
        (
            'increase([METRIC].http_requests_total{status=~"5..",route="/api"}) == 7',
            True,
            'increase([METRIC].http_requests_total{status=~"5..",route="/api"}) (7) == 7 '
            "(over 5.0s)",
        ),
        (
            'rate([METRIC].http_requests_total{route="/api"}) < 12',
            True,
            'rate([METRIC].http_requests_total{route="/api"}) (11.4) < 12 (over 5.0s)',
        ),
        (
            'rate([METRIC].http_requests_total{status=~"5..",route!~"/health.*"}) / '
            'rate([METRIC].http_requests_total{route!~"/health.*"}) <= 0.1',
            False,
            'rate([METRIC].http_requests_total{status=~"5..",route!~"/health.*"}) / '
            'rate([METRIC].http_requests_total{route!~"/health.*"}) (0.1228) <= 0.1 '
            "(over 5.0s)",
        ),
        ("increase([METRIC].nothing_total) == 0", True, None),  # a counter not used yet
        ('increase([METRIC].queue_depth{queue="analyse"}) == 0', True, None),
    ],
)
def test_rate_and_increase_over_two_scrapes(condition: str, ok: bool, detail: str | None) -> None:
    # A plain [METRIC] reads the second scrape alone (the totals since the process
    # started); rate() and increase() compare the two, and a series new in the second
    # (status 500) counts from zero.
    got_ok, got_detail = check(condition, scrapes(METRICS, LATER))
    assert got_ok is ok, got_detail
    if detail is not None:
        assert got_detail == detail


def test_a_counter_reset_between_scrapes_counts_from_zero() -> None:
    restarted = b'# TYPE x_total counter\nx_total{a="1"} 3\n'
    before = b'# TYPE x_total counter\nx_total{a="1"} 100\n'
    assert check("increase([METRIC].x_total) == 3", scrapes(before, restarted)) == (
        True,
        "increase([METRIC].x_total) (3) == 3 (over 5.0s)",
    )


def test_rates_without_two_scrapes_fail_with_a_reason() -> None:
    one = Observation(connected=True, status=200, body=METRICS, taken_at=1.0)
    assert check("rate([METRIC].http_requests_total) < 1", one) == (
        False,
        "rate([METRIC].http_requests_total) < 1: rate() needs two scrapes of this URL; "
        "there was one",
    )
    dead = Observation(connected=False, error="connection refused", taken_at=1.0)
    after = Observation(connected=True, status=200, body=METRICS, taken_at=6.0, previous=dead)
    assert check("increase([METRIC].http_requests_total) < 1", after) == (
        False,
        "increase([METRIC].http_requests_total) < 1: the earlier scrape got no response "
        "(connection refused)",
    )
    gauge = scrapes(METRICS, b"# TYPE queue_depth gauge\n")
    assert check('rate([METRIC].queue_depth{queue="x"}) < 1', gauge) == (
        False,
        'rate([METRIC].queue_depth{queue="x"}) < 1: no series matches queue_depth{queue="x"}',
    )


@pytest.mark.parametrize(
    ("text", "column", "reason"),
    [
        (
            "rate([BODY].x) < 1",
            1,
            "rate() takes a metric such as rate([METRIC].http_requests_total)",
        ),
        (
            "increase(3) < 1",
            1,
            "increase() takes a metric such as increase([METRIC].http_requests_total)",
        ),
        ("rate([METRIC].a, [METRIC].b) < 1", 1, "rate() takes exactly one argument"),
        ("rat([METRIC].a) < 1", 1, "unknown function 'rat'; did you mean rate()?"),
        (
            "rates([METRIC].a) > 1",
            1,
            "unknown function 'rates'; did you mean rate()?",
        ),
        (
            "foo([METRIC].a) > 1",
            1,
            "unknown function 'foo'; expected len, has, pat, any, rate or increase",
        ),
    ],
)
def test_malformed_rates(text: str, column: int, reason: str) -> None:
    with pytest.raises(ConditionError) as info:
        parse_condition(text)
    assert (info.value.column, info.value.reason) == (column, reason)


def test_uses_rates() -> None:
    assert uses_rates(parse_condition("rate([METRIC].a) / 2 > 1"))
    assert not uses_rates(parse_condition("[METRIC].a > 1"))
