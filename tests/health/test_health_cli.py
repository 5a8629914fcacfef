"""`scalectl health` against a small HTTP server on loopback that answers crafted bodies
(odd, broken or exactly-chosen ones); what the reference app itself answers is tested
against the real stack in test_health_stack.py."""

from __future__ import annotations

import json
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scalectl.errors import ExitCode
from scalectl.stack.process import free_port
from tests.conftest import Result, fixture_path
from tests.health.server import METRICS, Routes, component, serve
from tests.helpers.tls import self_signed

Cli = Callable[..., Result]


@pytest.fixture
def app() -> Iterator[Routes]:
    """Crafted answers: /health/ready warns about Redis, /metrics is a fixed exposition."""
    with serve() as routes:
        routes.health(
            "/health/ready",
            "warn",
            **{
                "postgresql:responseTime": component("pass", 1.5, "ms"),
                "redis:responseTime": component("warn", 1000.2, "ms", output="TimeoutError()"),
            },
        )
        routes.text("/metrics", METRICS)
        yield routes


def test_strict_makes_warn_unhealthy(cli: Cli, app: Routes) -> None:
    url = app.base + "/health/ready"
    assert cli("health", url).code == 0
    result = cli("health", url, "--strict")
    assert result.code == ExitCode.CHECK_FAILED
    assert result.stderr == "error: unhealthy: 2 of 3 rows failing (warn counts as fail)\n"


def test_a_failing_body_fails_with_its_components(cli: Cli, app: Routes) -> None:
    app.health("/health/ready", "fail", http=503, **{"postgresql:responseTime": component("fail")})
    result = cli("health", app.base + "/health/ready", "--json")
    assert result.code == ExitCode.CHECK_FAILED
    rows = json.loads(result.stdout)["rows"]
    assert [(r["check"], r["component"], r["status"]) for r in rows] == [
        ("/health/ready", None, "fail"),
        ("/health/ready", "postgresql:responseTime", "fail"),
    ]
    assert rows[0]["detail"] == "[STATUS] (503) == 200, release r-42"


def test_rates_scrape_twice_a_window_apart(cli: Cli, app: Routes) -> None:
    url = app.base + "/metrics"
    started = time.monotonic()
    result = cli(
        "health", url, "--rate-window", "400ms", "--json",
        "-C", 'increase([METRIC].http_requests_total{status=~"5.."}) == 0',
        "-C", 'rate([METRIC].http_requests_total) < 1',
    )  # fmt: skip
    took = time.monotonic() - started
    assert result.code == 0, result.stdout + result.stderr
    assert 0.4 <= took < 3
    assert len(app.seen) == 2  # the same URL twice; the crafted counters did not move
    (row,) = json.loads(result.stdout)["rows"]
    assert [c["detail"] for c in row["conditions"]] == [
        'increase([METRIC].http_requests_total{status=~"5.."}) (0) == 0 (over 0.4s)',
        "rate([METRIC].http_requests_total) (0) < 1 (over 0.4s)",
    ]


def test_invalid_health_json_fails_the_row(cli: Cli, app: Routes) -> None:
    app.text("/health", "{not json", content_type="application/health+json")
    result = cli("health", app.base + "/health", "--json")
    assert result.code == ExitCode.CHECK_FAILED
    (row,) = json.loads(result.stdout)["rows"]
    assert row["detail"].startswith("invalid application/health+json: not JSON")


def test_a_malformed_condition_is_bad_input(cli: Cli, app: Routes) -> None:
    result = cli("health", app.base, "-C", "[STATUS] = 200")
    assert result.code == ExitCode.BAD_INPUT
    assert result.stderr == (
        "error: --condition \"[STATUS] = 200\", column 10: unknown operator '='; "
        "use == to compare\n"
    )
    assert result.stdout == "" and not app.seen  # nothing was probed


def test_every_input_problem_is_reported_at_once(cli: Cli, tmp_path: Path) -> None:
    result = cli(
        "health",
        "localhost:8080",
        "-H",
        "no colon",
        "-C",
        "len([BODY] > 1",
        "--token-env",
        "SCALECTL_TEST_NO_SUCH_TOKEN",
        "--check-timeout",
        "soon",
        "--timeout",
        "5s",
        "--ca-cert",
        tmp_path / "missing.pem",
        env={"SCALECTL_TEST_NO_SUCH_TOKEN": ""},
    )
    assert result.code == ExitCode.BAD_INPUT
    assert result.stderr.splitlines() == [
        "error: 7 problems in the input",
        "--timeout bounds --watch or --wait; for one probe use --check-timeout",
        "--check-timeout soon: expected a duration such as 500ms, 5s, 2m, 1h30m or 7d, got 'soon'",
        "--condition \"len([BODY] > 1\", column 12: missing ')' to close len(",
        "bad URL 'localhost:8080': expected http:// or https:// and a host",
        "-H 'no colon': expected 'Name: value'",
        "--token-env SCALECTL_TEST_NO_SUCH_TOKEN: the variable is not set or empty",
        f"--ca-cert {tmp_path / 'missing.pem'}: no such file",
    ]


def test_headers_that_cannot_be_sent_are_bad_input(cli: Cli, app: Routes, tmp_path: Path) -> None:
    result = cli("health", app.base + "/health/ready", "-H", "X: a\nb", "-H", "bad name: x")
    assert result.code == ExitCode.BAD_INPUT
    assert result.stderr.splitlines() == [
        "error: 2 problems in the input",
        "-H 'X: a\\nb': the value of X holds '\\n': a header value cannot hold line breaks or "
        "control characters",
        "-H 'bad name: x': 'bad name' is not a header name (letters, digits and "
        "!#$%&'*+.^_`|~- only)",
    ]
    config = tmp_path / "health.yaml"
    config.write_text(
        f'version: 1\ndefaults: {{headers: {{"bad name": x}}}}\nendpoints: [{{url: {app.base}}}]\n'
    )
    bad = cli("health", "-c", config)
    assert bad.code == ExitCode.BAD_INPUT
    assert bad.stderr.splitlines() == [
        f"error: {config}:2:22 defaults.headers.bad name: 'bad name' is not a header name "
        "(letters, digits and !#$%&'*+.^_`|~- only)"
    ]
    assert not app.seen  # nothing was probed


def test_a_proxy_in_the_environment_is_not_used(
    cli: Cli, app: Routes, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, closed)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    result = cli("health", app.base + "/health/ready", "--json")
    assert result.code == 0, result.stdout
    assert len(app.seen) == 1


def test_a_bad_config_is_bad_input_with_its_place(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "health.yaml"
    config.write_text("version: 1\nendpoints:\n  - url: http://127.0.0.1:9/\n    conditons: []\n")
    result = cli("health", "--config", config)
    assert result.code == ExitCode.BAD_INPUT
    assert result.stderr.splitlines() == [
        f"error: {config}:4:5 endpoints[0].conditons: unknown key; did you mean 'conditions'?"
    ]


def test_a_config_file_with_url_endpoints(cli: Cli, app: Routes, tmp_path: Path) -> None:
    config = tmp_path / "health.yaml"
    config.write_text(
        "version: 1\n"
        "defaults: {headers: {X-Probe: scalectl}}\n"
        "endpoints:\n"
        f"  - name: ready\n    url: {app.base}/health/ready\n"
        "    conditions: ['[BODY].status == pat(*)', 'len([BODY].checks) == 2']\n"
        f"  - name: queues\n    url: {app.base}/metrics\n"
        "    conditions: ['[METRIC].queue_depth{queue=\"render\"} == 0']\n"
    )
    result = cli("health", "-c", config, "--json")
    assert result.code == 0, result.stdout + result.stderr
    rows = json.loads(result.stdout)["rows"]
    assert [(r["target"], r["check"]) for r in rows if r["component"] is None] == [
        (app.base.removeprefix("http://"), "ready"),
        (app.base.removeprefix("http://"), "queues"),
    ]


def test_example_config_paths_run_on_url_targets(cli: Cli, app: Routes) -> None:
    # The fixture's `ready` endpoint wants [BODY].status == pass: the warn body fails it.
    result = cli("health", app.base, "-c", fixture_path("health", "health.yaml"), "--json")
    assert result.code == ExitCode.CHECK_FAILED
    rows = [r for r in json.loads(result.stdout)["rows"] if r["component"] is None]
    assert [(r["check"], r["status"]) for r in rows] == [("ready", "fail"), ("queues", "pass")]
    assert rows[0]["detail"] == "[BODY].status (warn) == pass, release r-42"


def test_a_bearer_token_from_the_environment(cli: Cli, app: Routes) -> None:
    # The reference app ignores Authorization, so only a server that records what it got
    # can show the header arrived (other headers: test_health_stack.py, on the real app).
    result = cli(
        "health",
        app.base + "/health/ready",
        "--token-env",
        "PROBE_TOKEN",
        "--json",
        env={"PROBE_TOKEN": "s3cret-value"},
    )
    assert result.code == 0, result.stderr
    (seen,) = app.seen
    assert seen["authorization"] == "Bearer s3cret-value"
    assert "s3cret" not in result.stdout + result.stderr


def test_a_slow_target_times_out_per_check(cli: Cli, tmp_path: Path) -> None:
    import socket

    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/health"
        started = time.monotonic()
        result = cli("health", url, "--check-timeout", "300ms", "--json")
        # An endpoint's own timeout wins over --check-timeout.
        config = tmp_path / "health.yaml"
        config.write_text(f"version: 1\nendpoints:\n  - url: {url}\n    timeout: 200ms\n")
        own = cli("health", "-c", config, "--check-timeout", "30s", "--json")
    assert time.monotonic() - started < 3
    assert result.code == ExitCode.CHECK_FAILED
    assert json.loads(result.stdout)["rows"][0]["detail"] == "no response within 0.3s"
    assert json.loads(own.stdout)["rows"][0]["detail"] == "no response within 0.2s"


def test_wait_times_out_on_a_dead_url_with_the_failing_rows(cli: Cli) -> None:
    url = f"http://127.0.0.1:{free_port()}/health/ready"
    started = time.monotonic()
    result = cli("health", url, "--wait", "--timeout", "1s", "--interval", "250ms")
    elapsed = time.monotonic() - started
    assert result.code == ExitCode.CHECK_FAILED
    assert elapsed < 4
    error = result.stderr.splitlines()
    assert error[0].startswith("error: not healthy within 1s (")
    assert error[1].startswith(f"127.0.0.1:{url.split(':')[2].split('/')[0]} {url}: fail ")
    assert error[1].endswith("; connection refused")
    assert "checks: 0 healthy, 1 pending, 0 unhealthy; failing:" in result.stdout


def test_watch_needs_a_timeout_off_a_terminal(cli: Cli, app: Routes) -> None:
    result = cli("health", app.base, "--watch")
    assert result.code == ExitCode.BAD_INPUT
    assert result.stderr == "error: --watch needs --timeout when not at a terminal (CI must end)\n"


def test_without_a_stack_or_url_it_says_so(cli: Cli, tmp_path: Path) -> None:
    result = cli("health", "--state-dir", tmp_path)
    assert result.code == ExitCode.BAD_INPUT
    assert result.stderr == (
        f"error: {tmp_path}: no stack is running here (run `scalectl stack up`)\n"
    )


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"), days=1)


def test_tls_verification_insecure_and_a_ca_bundle(
    cli: Cli, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with serve(tls=context) as routes:
        routes.health("/health", "pass")
        url = routes.base + "/health"
        untrusted = cli("health", url, "--json")
        assert untrusted.code == ExitCode.CHECK_FAILED
        detail = json.loads(untrusted.stdout)["rows"][0]["detail"]
        assert detail.startswith("TLS: ") and "CERTIFICATE_VERIFY_FAILED" in detail
        assert cli("health", url, "--insecure").code == 0
        assert cli("health", url, "--ca-cert", cert).code == 0
        config = cert.parent / "health.yaml"  # a config's ca_cert is relative to the file
        config.write_text(
            f"version: 1\ndefaults: {{ca_cert: cert.pem}}\nendpoints: [{{url: {url}}}]\n"
        )
        assert cli("health", "-c", config).code == 0
        both = cli("health", url, "--ca-cert", cert, "--insecure")
        assert both.stderr == "error: give --insecure or --ca-cert, not both\n"


def test_ctrl_c_ends_a_watch_with_the_last_table_and_130(app: Routes) -> None:
    # The installed entry point as a subprocess: a real SIGINT, as at a terminal.
    import os
    import signal
    import sys

    exe = Path(sys.executable).parent / "scalectl"
    proc = subprocess.Popen(
        [
            str(exe),
            "health",
            app.base + "/health/ready",
            "--watch",
            "--timeout",
            "60s",
            "--interval",
            "200ms",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the first round has been printed
        assert "pending" in first or "checks:" in first, first
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == ExitCode.INTERRUPTED
    assert "│ /health/ready " in out and err.strip() == "interrupted"


def test_help_of_the_group_shows_the_probe_options(
    cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    # `scalectl health --help` is what people type; probe is what runs. (click writes help
    # to the process's stdout.)
    result = cli("health", "--help")
    assert result.code == 0
    result.stdout = capsys.readouterr().out
    assert (
        "Without a command, scalectl health means scalectl health probe (usage: scalectl "
        "health [OPTIONS] [URL]...); its arguments and options:"
    ) in " ".join(result.stdout.split())
    for option in ("--wait", "--strict", "--condition", "--rate-window", "--token-env"):
        assert f"  {option} " in result.stdout or f", {option} " in result.stdout, option


def test_an_answer_too_large_fails_unread(cli: Cli, app: Routes) -> None:
    app.text("/huge", "x" * (17 * 2**20))
    result = cli("health", f"{app.base}/huge", "--json")
    assert result.code == ExitCode.CHECK_FAILED
    assert json.loads(result.stdout)["rows"][0]["detail"] == "the answer is larger than 16 MiB"


def test_a_compressed_answer_is_not_inflated(cli: Cli, app: Routes) -> None:
    # 16 MiB of zeros gzip to 16 KiB: inflated before the size check, a small answer could
    # become any size. Identity is asked for; an answer compressed anyway is not read.
    import gzip

    from tests.health.server import Answer

    bomb = gzip.compress(b"\0" * (16 * 2**20))
    app.answers["/bomb"] = Answer(200, bomb, "text/plain", {"Content-Encoding": "gzip"})
    result = cli("health", f"{app.base}/bomb", "--json")
    assert result.code == ExitCode.CHECK_FAILED
    detail = json.loads(result.stdout)["rows"][0]["detail"]
    assert detail == "the answer is compressed (gzip) though identity was asked"
    assert app.seen[-1].get("accept-encoding") == "identity"
