"""A plan's measured capacity: the one-line edit `loadtest capacity --write` makes, the
comment it leaves, and `scalectl plan`'s warning for a capacity with no (or an old)
measurement behind it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from scalectl.errors import InputError
from scalectl.loadtest.capacity import Gate, Run, Search, Settings
from scalectl.plan import measured
from scalectl.yamlsource import parse
from tests.conftest import EXAMPLES, Result, fixture_path

Cli = Callable[..., Result]
COMMENT = "# measured 2026-12-01, commit abc1234: 180-196 rps held p95 <= 300 ms"


def edited(text: str, service: str = "api", value: str = "180") -> str:
    return measured.with_capacity(text, parse(text, "plan.yaml"), service, value, COMMENT)


def test_the_edit_changes_one_line_and_replaces_its_comment() -> None:
    text = (EXAMPLES / "reference-app.yaml").read_text()
    new = edited(text)
    old_lines, new_lines = text.split("\n"), new.split("\n")
    changed = [i for i, (a, b) in enumerate(zip(old_lines, new_lines, strict=True)) if a != b]
    assert len(changed) == 1
    assert new_lines[changed[0]] == f"      per_replica_rps: 180  {COMMENT}"
    assert "bench/stack_bench.py" not in new_lines[changed[0]]  # the old comment went


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "    capacity: {per_replica_rps: 200, target_utilization: 0.75}",
            f"    capacity: {{per_replica_rps: 180, target_utilization: 0.75}}  {COMMENT}",
        ),
        (
            "    capacity: {per_replica_rps: 2.5e2, mean_latency_ms: 20} # old\r",
            f"    capacity: {{per_replica_rps: 180, mean_latency_ms: 20}}  {COMMENT}\r",
        ),
    ],
)
def test_flow_mappings_and_crlf_keep_the_rest_of_the_line(line: str, expected: str) -> None:
    text = (
        "version: 1\nname: shop\nservices:\n  api:\n"
        f"{line}\n    traffic: {{peak_rps: 10}}\nslo: {{availability: {{target: 0.999}}}}\n"
    )
    assert edited(text).split("\n")[4] == expected


def test_a_value_one_line_cannot_hold_is_refused() -> None:
    text = "base: &cap {per_replica_rps: 200}\nservices:\n  api:\n    capacity: *cap\n"
    with pytest.raises(InputError, match="edit it by hand"):
        edited(text)
    with pytest.raises(InputError, match="no service 'web' \\(services: api\\)"):
        edited(text, service="web")


def test_plan_warns_without_a_measurement_and_when_it_is_old(cli: Cli, tmp_path: Path) -> None:
    text = fixture_path("plans", "minimal.yaml").read_text()
    plan = tmp_path / "plan.yaml"
    plan.write_text(text)
    none = cli("plan", plan, "-o", tmp_path / "a")
    assert (
        f"warning: {plan}:8 services.api.capacity.per_replica_rps has no measurement behind "
        f"it; measure it: scalectl loadtest capacity --plan {plan} --service api --write {plan}"
    ) in none.stderr

    old = (dt.date.today() - dt.timedelta(days=100)).isoformat()
    plan.write_text(text.replace("per_replica_rps: 200", f"per_replica_rps: 200  # measured {old}"))
    stale = cli("plan", plan, "-o", tmp_path / "b")
    assert f"was measured on {old}, 100 days ago (more than 90)" in stale.stderr
    assert (
        "was measured on"
        not in cli("plan", plan, "-o", tmp_path / "c", "--capacity-max-age", "0").stderr
    )
    assert (
        "per_replica_rps"
        not in cli("plan", plan, "-o", tmp_path / "d", "--capacity-max-age", "120d").stderr
    )


def _run(rate: float, verdict: str) -> Run:
    return Run(rate, "step", verdict, [], 2, 200, 0.0, rate, {}, None)  # type: ignore[arg-type]


def test_the_interval_widens_over_noisy_runs() -> None:
    search = Search(Gate("p95_ms", 300, 0.01, "--p95-ms"), Settings(10, 1000))
    search.runs = [_run(r, v) for r, v in [(50, "pass"), (75, "pass"), (112, "fail")]]
    assert (search.low, search.high, search.verdict) == (75, 112, "pass")
    # A bisection probe held and its repeat broke: the noise moves low back down.
    search.runs += [_run(92, "pass"), _run(92, "fail"), _run(112, "fail")]
    assert (search.low, search.high) == (75, 112)
    # A repeat held above a rate that broke: high moves up to where every run broke.
    search.runs += [_run(100, "fail"), _run(104, "pass")]
    assert (search.low, search.high) == (75, 112)
    assert Settings(10, 100, factor=2).steps() == [10, 20, 40, 80, 100]
