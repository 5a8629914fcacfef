"""The Prometheus text exposition parser and series selectors."""

from __future__ import annotations

import math

import pytest

from scalectl.exposition import ExpositionError, parse, parse_selector

TEXT = r"""# HELP http_requests_total HTTP requests answered
# TYPE http_requests_total counter
http_requests_total{method="GET",route="/api/stats",status="200"} 98.0
http_requests_total{ method = "GET" , route="/a\"b\\c\nd", status="503", } 2 1700000000000
# TYPE queue_depth gauge
queue_depth{queue="analyse"} 7
up 1
nan_metric NaN
inf_metric +Inf
# EOF
"""


def test_parses_samples_labels_escapes_and_special_values() -> None:
    exp = parse(TEXT)
    assert [s.name for s in exp.samples] == [
        "http_requests_total",
        "http_requests_total",
        "queue_depth",
        "up",
        "nan_metric",
        "inf_metric",
    ]
    second = exp.samples[1]
    assert second.label_map == {"method": "GET", "route": '/a"b\\c\nd', "status": "503"}
    assert second.value == 2
    assert math.isnan(exp.samples[4].value) and exp.samples[5].value == math.inf
    assert exp.exposes("queue_depth") and exp.exposes("up") and not exp.exposes("down")


def test_exemplars_are_ignored() -> None:
    exp = parse('foo_bucket{le="0.5"} 3 # {trace_id="abc"} 0.4 1700000000\n')
    assert exp.samples[0].value == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ok\n{x} 1\n", "line 1: expected a value after 'ok'"),
        ("a 1\n{x} 1\n", "line 2: expected a metric name, got '{x} 1'"),
        ("a one\n", "line 1: 'one' is not a number"),
        ("a 1 2 3\n", "line 1: expected a value after 'a'"),
        ('a{b="c"\n', "line 1: expected ',' or '}' after a label value"),
        ('a{b=~"c"} 1\n', "line 1: expected = after label 'b'"),
        ("<html>\n", "line 1: expected a metric name, got '<html>'"),
    ],
)
def test_malformed_expositions_name_the_line(text: str, message: str) -> None:
    with pytest.raises(ExpositionError) as info:
        parse(text)
    assert str(info.value) == message


def test_selectors_match_like_promql() -> None:
    exp = parse(TEXT)
    selector, end = parse_selector('http_requests_total{status=~"5..", route!=""} < 1')
    assert end == len('http_requests_total{status=~"5..", route!=""}')
    assert [s.value for s in exp.select(selector)] == [2]
    assert str(selector) == 'http_requests_total{status=~"5..",route!=""}'
    absent, _ = parse_selector('up{missing=""}')  # a missing label is the empty string
    assert [s.name for s in exp.select(absent)] == ["up"]
    single, _ = parse_selector("queue_depth{queue='analyse'}")  # single quotes, as in PromQL
    assert [s.value for s in exp.select(single)] == [7]


def test_names_include_a_histograms_series_before_it_has_observations() -> None:
    # A labelled family has no samples until first used; the checklist's metrics-exposed
    # item still has to find the series its alert rules select.
    exp = parse(
        "# HELP lat_seconds Latency\n"
        "# TYPE lat_seconds histogram\n"
        "# TYPE jobs_total counter\n"
        'http_requests_total{route="/a \\"q\\"",status="500"} 1\n'
        "up_time 3 1700000000000\n"
    )
    assert {"lat_seconds_bucket", "lat_seconds_count", "lat_seconds_sum", "up_time"} <= exp.names
    assert exp.exposes("lat_seconds_bucket") and not exp.exposes("lat_seconds_total")
    assert exp.is_counter("jobs_total") and exp.is_counter("x_total")
    assert not exp.is_counter("up_time")
    (sample,) = exp.series("http_requests_total")
    assert sample.label_map == {"route": '/a "q"', "status": "500"}
