"""Metric names from PromQL and histogram quantiles (the exposition: tests/health)."""

from __future__ import annotations

import math

import pytest

from scalectl.checklist.promql import metric_names, quantile, synthetic
from tests.conftest import ROOT


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('rate(http_requests_total{job="api", status=~"5.."}[5m])', {"http_requests_total"}),
        (
            "histogram_quantile(0.95, sum by (le) (rate(x_seconds_bucket[5m] offset 1h))) > 1e3",
            {"x_seconds_bucket"},
        ),
        ("a and on(instance) b or c unless vector(0) * Inf", {"a", "b", "c"}),
        ('{__name__="by_label"} + sum without (route) (d)', {"by_label", "d"}),
        ('absent(up{job="api"} == 1)', {"up"}),
        (
            "slo:ratio:rate5m / 0.001 > bool 14.4  # a comment naming fake_metric",
            {"slo:ratio:rate5m"},
        ),
        ('max by (queue) (queue_depth{queue="a b"}) > 40', {"queue_depth"}),
    ],
)
def test_metric_names(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_metric_names_of_the_rendered_rules() -> None:
    import yaml

    rules = ROOT / "tests" / "golden" / "reference-app" / "local" / "prometheus"
    found: set[str] = set()
    for name in ("alerts.rules.yml", "slo.rules.yml"):
        for group in yaml.safe_load((rules / name).read_text())["groups"]:
            for rule in group["rules"]:
                found |= metric_names(rule["expr"])
    scraped = {n for n in found if ":" not in n and not synthetic(n)}
    assert scraped == {
        "http_request_duration_seconds_bucket",
        "http_requests_total",
        "process_resident_memory_bytes",
        "queue_dead_letters",
        "queue_depth",
        "queue_oldest_job_age_seconds",
    }


def test_quantile_like_histogram_quantile() -> None:
    buckets = [(0.1, 50.0), (0.5, 90.0), (1.0, 100.0), (math.inf, 100.0)]
    assert quantile(0.5, buckets) == pytest.approx(0.1)
    assert quantile(0.95, buckets) == pytest.approx(0.75)  # halfway through (0.5, 1.0]
    assert quantile(0.95, [(0.1, 0.0), (math.inf, 10.0)]) == 0.1  # in +Inf: the last bound
    assert quantile(0.95, [(0.1, 0.0), (math.inf, 0.0)]) is None
