"""The SLO file's response checks (`checks` under an endpoint or a group) and their gate
(`checks_rate`), and its groups by status class and by tag: the schema, the evaluation
inside Locust on real response objects, the counts through raw.json (warm-up left out),
the verdict, and one real run with 2 Locust processes (worker to master) that reads back
in every report."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from scalectl.errors import ExitCode, InputError
from scalectl.loadtest.checks import MAX_BODY_BYTES
from scalectl.loadtest.child.checks import Checker
from scalectl.loadtest.child.filters import GroupFilters
from scalectl.loadtest.evaluation import evaluate
from scalectl.loadtest.rawjson import from_raw
from scalectl.loadtest.runlength import short_of_samples
from scalectl.loadtest.slo import SloSpec, load_slo_file
from tests.conftest import Result, fixture_path
from tests.helpers.input_files import slo_file
from tests.helpers.loadtest_runs import STARTED, make_raw
from tests.loadtest.server import JSON_EMPTY_EVERY, no_locust_left, serve

Cli = Callable[..., Result]
CHECKED = fixture_path("locust", "checked.py")


def spec(**kwargs: Any) -> SloSpec:
    return SloSpec.model_validate({"version": 1, **kwargs})


def response(status: int, body: bytes, **headers: str) -> requests.Response:
    """A real requests.Response, as HttpUser's request event carries it."""
    made = requests.Response()
    made.status_code = status
    made._content = body
    made.headers.update(headers)
    return made


ITEMS = b'{"items": [{"id": 1, "ok": true, "name": "one"}], "total": 1.0}'


def test_checks_judge_status_headers_and_json_and_count_per_endpoint() -> None:
    checks = [
        {"status": "2xx"},
        {"status": [200, 304]},
        {"header": "content-type", "contains": "json"},
        {"header": "X-Missing", "exists": False},
        {"json": "items.0.id", "exists": True},
        {"json": "items.0.id", "type": "integer"},
        {"json": "items.0.ok", "equals": 1},  # true is not 1
        {"json": "total", "equals": 1},  # 1.0 is 1
        {"json": "items.1", "exists": False},
    ]
    checker = Checker()
    assert checker.load(
        SloSpec.model_validate_json(spec(endpoints={"GET /a": {"checks": checks}}).for_plugin())
    )
    good = response(200, ITEMS, **{"Content-Type": "application/json"})
    checker.on_request("GET", "/a", response=good)
    checker.on_request("GET", "/a", response=response(201, b"not json"))
    checker.on_request("GET", "/a", response=None)  # a custom client's event: fails all
    checker.on_request("GET", "/b", response=good)  # no checks there: not counted
    [per_key] = checker.export().values()
    assert list(per_key) == ["GET /a"]
    tallies = per_key["GET /a"]
    assert [tallies[str(i)] for i in range(len(checks))] == [
        [2, 1],
        [1, 2],
        [1, 2],
        [2, 1],  # a missing header is absent on the second response too
        [1, 2],
        [1, 2],
        [0, 3],
        [1, 2],
        [1, 2],  # an unparsed body proves nothing absent
    ]
    assert checker.export() == {}  # exported counts start over


def test_a_body_over_the_limit_or_unread_is_not_parsed_and_its_json_checks_fail() -> None:
    checker = Checker()
    checker.load(spec(endpoints={"/a": {"checks": [{"json": "a", "exists": True}]}}))
    big = b'{"a": 1, "pad": "' + b"x" * MAX_BODY_BYTES + b'"}'
    checker.on_request("POST", "/a", response=response(200, big))
    checker.on_request("POST", "/a", response=response(200, b'{"a": 1}'))
    checker.on_request("POST", "/a", response=response(200, b"[" * 100_000))  # too deep
    # A streamed response (stream=True) the locustfile has not read: left for it to read.
    streamed = requests.Response()
    streamed.status_code, streamed.raw = 200, io.BytesIO(b'{"a": 1}')
    checker.on_request("POST", "/a", response=streamed)
    assert streamed.raw.read() == b'{"a": 1}'
    assert list(checker.export().values()) == [{"POST /a": {"0": [1, 3]}}]


def test_groups_by_status_and_tag_record_only_their_requests() -> None:
    filters = GroupFilters()
    groups = {
        "ok": {"match": "GET /a*", "status": "2xx"},
        "not found": {"regex": "^GET ", "status": [404, "5xx"]},
        "checkout": {"match": "*", "tag": "checkout"},
        "plain": {"match": "*", "p95_ms": 10},  # not filtered: nothing recorded apart
    }
    filters.load(spec(groups=groups))
    assert [name for name, _ in filters.groups] == ["ok", "not found", "checkout"]
    tagged = {"tags": ["checkout", "eu"]}
    filters.record("GET", "/a", 5000, None, response(200, b""), None)
    filters.record("GET", "/a", 7000, "500", response(503, b""), tagged)
    filters.record("GET", "/ab", 9000, None, response(204, b""), {"tags": "checkout"})
    filters.record("POST", "/a", 1000, None, None, {"tags": ("eu",)})  # no group of it
    filters.record("METRIC", "/a", 1000, None, None, tagged)  # a custom metric never is
    recorded = filters.export()["endpoints"]
    assert {k: (e["requests"], e["failures"]) for k, e in recorded.items()} == {
        "group ok": (2, 0),
        "group not found": (1, 1),
        "group checkout": (2, 1),
    }


def test_a_group_by_status_is_gated_on_its_requests_only_after_the_warmup() -> None:
    raw = make_raw([{"GET /a": ([500.0] * 30, 30)}, {"GET /a": ([10.0] * 40 + [900.0] * 10, 10)}])
    # What the plugin recorded apart: the successful requests of each second.
    alone = make_raw([{"group ok": ([500.0] * 0, 0)}, {"group ok": ([10.0] * 40, 0)}])
    raw["groups"] = {"endpoints": alone["endpoints"], "windows": alone["windows"]}
    limits = {"ok": {"match": "GET *", "status": "2xx", "p95_ms": 20, "error_rate": 0}}
    got = evaluate(spec(groups=limits), from_raw(raw, warmup=1.0)).results
    assert [(s.name, s.observed, s.status) for s in got] == [
        ("group ok p95_ms <= 20", pytest.approx(10, rel=0.01), "inconclusive"),  # 40 < 100
        ("group ok error_rate <= 0", 0.0, "pass"),
    ]
    unfiltered = {"all": {"match": "GET *", "error_rate": 0}}
    assert evaluate(spec(groups=unfiltered), from_raw(raw, warmup=1.0)).verdict == "fail"


def _raw_with_checks(counts: list[dict[str, dict[str, list[int]]]]) -> dict[str, Any]:
    """make_raw's run with check counts per second (second i holds counts[i])."""
    raw = make_raw([{"GET /a": ([10.0] * 30, 0), "GET /b": ([10.0] * 30, 0)}] * len(counts))
    raw["checks"] = {str(int(STARTED) + i): c for i, c in enumerate(counts)}
    return raw


GATED = {
    "global": {"checks_rate": 0.9},
    "endpoints": {
        "GET /a": {"checks": [{"status": 200}, {"json": "x", "exists": True, "checks_rate": 1}]}
    },
    "groups": {"all": {"match": "GET *", "checks": [{"status": "2xx"}], "checks_rate": 0.5}},
}


def test_checks_rate_gates_globally_per_group_and_per_check() -> None:
    second = {"GET /a": {"0": [30, 0], "1": [29, 1], "2": [30, 0]}, "GET /b": {"2": [15, 15]}}
    evaluation = evaluate(spec(**GATED), from_raw(_raw_with_checks([second])))
    got = [(s.name, s.observed, s.status) for s in evaluation.results]
    assert got == [
        ("global checks_rate >= 0.9", round(104 / 120, 6), "fail"),
        ("group all checks_rate >= 0.5", round(104 / 120, 6), "pass"),
        ("GET /a check 'json x exists' checks_rate >= 1", round(29 / 30, 6), "fail"),
    ]
    assert evaluation.results[0].observed_text == "86.67%"
    tallies = [(c.scope, c.check, c.endpoint, c.passed, c.failed) for c in evaluation.checks]
    assert tallies == [
        ("GET /a", "status 200", "GET /a", 30, 0),
        ("GET /a", "json x exists", "GET /a", 29, 1),
        ("group all", "status 2xx", "GET /a", 30, 0),
        ("group all", "status 2xx", "GET /b", 15, 15),
    ]


def test_checks_never_evaluated_are_inconclusive_and_the_warmup_is_left_out() -> None:
    # Second 0 (the warm-up) holds every failure; the measured second holds no checks.
    raw = _raw_with_checks([{"GET /a": {"1": [0, 30]}}, {}])
    evaluation = evaluate(spec(**GATED), from_raw(raw, warmup=1.0))
    statuses = {s.name: (s.status, s.detail) for s in evaluation.results}
    assert statuses["global checks_rate >= 0.9"] == ("inconclusive", "0 checks evaluated, need 20")
    assert evaluation.verdict == "inconclusive"
    assert {(c.check, c.endpoint, c.passed, c.failed) for c in evaluation.checks} == {
        ("status 200", None, 0, 0),
        ("json x exists", None, 0, 0),
        ("status 2xx", None, 0, 0),
    }
    # Without the warm-up the same run fails.
    assert evaluate(spec(**GATED), from_raw(raw)).verdict == "fail"


def test_malformed_checks_are_reported_with_file_line_and_field(tmp_path: Path) -> None:
    path = slo_file(
        tmp_path,
        "version: 1\n"
        "endpoints:\n"
        "  GET /json:\n"
        "    checks:\n"
        "      - {status: 200, header: X-A}\n"
        "      - {json: 'a..b', exists: true}\n"
        "      - {header: 'a b', exists: true}\n"
        "      - {json: a, equals: [1]}\n"
        "      - {json: a, contains: x}\n"
        "      - {status: 99}\n",
    )
    with pytest.raises(InputError) as exc:
        load_slo_file(path)
    located = [re.match(rf"{re.escape(str(path))}:(\d+):\d+ (.+?): ", x) for x in exc.value.lines]
    assert [f"{m[1]}:{m[2]}" for m in located if m] == [
        "5:endpoints.GET /json.checks[0]",
        "6:endpoints.GET /json.checks[1].json",
        "7:endpoints.GET /json.checks[2].header",
        "8:endpoints.GET /json.checks[3].equals",
        "9:endpoints.GET /json.checks[4]",
        "10:endpoints.GET /json.checks[5].status",
    ]
    many = "\n".join(f"      - {{status: {200 + i}}}" for i in range(21))
    path = slo_file(tmp_path, f"version: 1\nendpoints:\n  /a:\n    checks:\n{many}\n")
    with pytest.raises(InputError) as exc:
        load_slo_file(path)
    text = "\n".join(exc.value.lines)
    assert ":5:7 endpoints./a.checks: list should have at most 20 items" in text


@pytest.mark.stack
def test_a_real_run_counts_checks_apart_from_failures_and_gates_them(
    cli: Cli, tmp_path: Path
) -> None:
    # /json always answers 200, but one body in JSON_EMPTY_EVERY has no items; /flaky
    # answers 500 one time in ten. Two Locust processes: the counts travel worker to master.
    slo = slo_file(
        tmp_path,
        "version: 1\n"
        "global: {checks_rate: 0.5}\n"
        "endpoints:\n"
        "  GET /json:\n"
        "    checks:\n"
        "      - {status: 2xx}\n"
        "      - {header: Content-Type, equals: application/json}\n"
        "      - {name: has items, json: items.0.id, exists: true, checks_rate: 0.9}\n"
        "groups:\n"
        "  all:\n"
        "    match: 'GET /*'\n"
        "    checks: [{status: [200, 3xx]}]\n"
        "  ok: {match: 'GET /flaky', status: 2xx, error_rate: 0, min_throughput_rps: 0.1}\n"
        "  errors: {match: 'GET /flaky', status: [5xx], min_throughput_rps: 0.1}\n"
        "  listing: {match: '*', tag: listing, min_throughput_rps: 0.1}\n",
    )
    with serve() as url:
        result = cli(
            "loadtest", CHECKED, "-H", url, "-u", "4", "-t", "4s", "--processes", "2",
            "--slo", slo, "--report-dir", tmp_path / "r",
        )  # fmt: skip
        assert no_locust_left(url)
    assert result.code == ExitCode.CHECK_FAILED, result.stdout + result.stderr
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    endpoints = {e["key"]: e for e in report["endpoints"]}
    json_ep, flaky = endpoints["GET /json"], endpoints["GET /flaky"]
    n = json_ep["requests"]
    assert n > 40 and json_ep["failures"] == 0  # a wrong body is no failed request
    checks = {(c["check"], c["endpoint"]): c for c in report["checks"]}
    assert (
        checks[("status 2xx", "GET /json")]["passed"],
        checks[("status 2xx", "GET /json")]["failed"],
    ) == (n, 0)
    assert checks[('header Content-Type equals "application/json"', "GET /json")]["failed"] == 0
    items = checks[("has items", "GET /json")]
    assert items["passed"] + items["failed"] == n
    # The server's own count of empty bodies, give or take the requests in flight at the end.
    assert abs(items["failed"] - n / JSON_EMPTY_EVERY) <= 3, items
    status = checks[("status 200,3xx", "GET /flaky")]
    assert (
        status["failed"] == flaky["failures"]
        and status["passed"] + status["failed"] == (flaky["requests"])
    )
    assert json_ep["checks_passed"] + json_ep["checks_failed"] == 4 * n
    slos = {s["name"]: s for s in report["slos"]}
    assert slos["global checks_rate >= 0.5"]["status"] == "pass"
    gate = slos["GET /json check 'has items' checks_rate >= 0.9"]
    assert gate["status"] == "fail" and gate["observed"] == pytest.approx(0.75, abs=0.05)
    # The groups by status class and by tag count only their requests.
    seconds = report["meta"]["duration_s"]
    ok, errors = (
        slos["group ok min_throughput_rps >= 0.1"],
        slos["group errors min_throughput_rps >= 0.1"],
    )
    # Requests back from throughput (both rounded to 3 decimals): exact counts.
    assert round(ok["observed"] * seconds) == flaky["requests"] - flaky["failures"]
    assert round(errors["observed"] * seconds) == flaky["failures"]
    assert flaky["failures"] > 0 and slos["group ok error_rate <= 0"]["status"] == "pass"
    listing = slos["group listing min_throughput_rps >= 0.1"]
    assert round(listing["observed"] * seconds) == n
    html = (tmp_path / "r" / "report.html").read_text()
    assert 'id="check-table"' in html and "has items" in html
    summary = (tmp_path / "r" / "summary.md").read_text()
    assert "| GET /json 'has items' | GET /json |" in summary
    assert "Checks" in result.stdout and "has items" in result.stdout


def test_run_time_auto_waits_for_a_check_gates_evaluations() -> None:
    gated = spec(endpoints={"GET /json": {"checks": [{"status": "2xx", "checks_rate": 0.9}]}})
    assert short_of_samples(gated, {"GET /json": 5}, 5) == ["GET /json 5 of 20 (checks_rate)"]
    assert short_of_samples(gated, {"GET /json": 20}, 20) == []
