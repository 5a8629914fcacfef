"""tcp://, tls:// and dns:// endpoints and the certificate expiry of https:// ones, against
real listeners on loopback and a certificate made here with the openssl CLI."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from scalectl.errors import ExitCode, InputError
from scalectl.health.conditions import ConditionError, parse_condition
from scalectl.health.config import load_config
from scalectl.health.sockets import not_after
from scalectl.stack.process import free_port
from tests.conftest import Result
from tests.health.server import serve
from tests.helpers.tls import self_signed

Cli = Callable[..., Result]


def _config(tmp_path: Path, endpoints: str, defaults: str = "") -> Path:
    path = tmp_path / "health.yaml"
    path.write_text(f"version: 1\n{defaults}endpoints:\n{endpoints}")
    return path


def _rows(result: Result) -> list[dict[str, Any]]:
    return [r for r in json.loads(result.stdout)["rows"] if r["component"] is None]


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP port something listens on (the kernel completes the connect; nobody accepts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


def test_tcp_connects_to_a_listener_and_fails_on_a_closed_port(
    cli: Cli, listener: int, tmp_path: Path
) -> None:
    closed = free_port()
    config = _config(
        tmp_path,
        f"  - {{name: open, url: 'tcp://127.0.0.1:{listener}'}}\n"
        f"  - {{name: closed, url: 'tcp://127.0.0.1:{closed}'}}\n"
        f"  - {{name: expected, url: 'tcp://127.0.0.1:{closed}',"
        " conditions: ['[CONNECTED] == false']}\n",
    )
    result = cli("health", "-c", config, "--json")
    assert result.code == ExitCode.CHECK_FAILED
    rows = _rows(result)
    assert [(r["check"], r["status"], r["detail"]) for r in rows] == [
        ("open", "pass", "connected"),
        ("closed", "fail", "connection refused"),
        ("expected", "pass", "connection refused (as the conditions expect)"),
    ]
    assert rows[0]["conditions"][0]["detail"] == "[CONNECTED] (true) == true"


def test_a_bearer_token_is_no_reason_to_refuse_a_socket_probe(
    cli: Cli, listener: int, tmp_path: Path
) -> None:
    # The token goes with HTTP requests only; a remote tcp:// endpoint never receives it.
    config = _config(tmp_path, f"  - url: 'tcp://127.0.0.1:{listener}'\n")
    result = cli("health", "-c", config, "--token-env", "PROBE_TOKEN", env={"PROBE_TOKEN": "t"})
    assert result.code == 0, result.stderr


def test_bad_socket_urls_are_bad_input_with_their_place(cli: Cli, tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        "  - url: tcp://127.0.0.1\n  - url: tls://x:1/path\n  - url: dns://x:53\n",
    )
    result = cli("health", "-c", config)
    assert result.code == ExitCode.BAD_INPUT
    assert result.stderr.splitlines()[1:] == [
        f"{config}:3:10 endpoints[0].url: bad URL 'tcp://127.0.0.1': expected "
        "tcp://host:port, nothing after the port",
        f"{config}:4:10 endpoints[1].url: bad URL 'tls://x:1/path': expected "
        "tcp://host:port, nothing after the port".replace("tcp://host", "tls://host"),
        f"{config}:5:10 endpoints[2].url: bad URL 'dns://x:53': expected dns://name, "
        "the name to resolve and nothing else",
    ]


def test_default_conditions_by_scheme(tmp_path: Path) -> None:
    from scalectl.health.config import config_checks
    from scalectl.health.targets import PlanFacts

    config = load_config(
        _config(tmp_path, "  - url: tcp://h:1\n  - url: tls://h:1\n  - url: dns://h\n")
    )
    assert [
        [c.text for c in check.conditions] for check in config_checks(config, [], PlanFacts())
    ] == [
        ["[CONNECTED] == true"],
        ["[CONNECTED] == true", "[CERTIFICATE_EXPIRATION] > 48h"],
        ["[DNS_RCODE] == NOERROR"],
    ]


def test_durations_are_milliseconds_only_against_certificate_expiration() -> None:
    cond = parse_condition("[CERTIFICATE_EXPIRATION] > 48h")
    assert getattr(cond.right, "value", None) == 48 * 3600 * 1000
    assert getattr(parse_condition("7d < [CERTIFICATE_EXPIRATION]").left, "value", None) == (
        7 * 86400 * 1000
    )
    with pytest.raises(ConditionError, match="'<' compares numbers; '300ms' is not a number"):
        parse_condition("[RESPONSE_TIME] < 300ms")
    with pytest.raises(ConditionError, match="'>' compares numbers; 'soon' is not a number"):
        parse_condition("[CERTIFICATE_EXPIRATION] > soon")


# --- TLS ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ten_days(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, valid for 10 days."""
    return self_signed(tmp_path_factory.mktemp("tls10"), days=10)


@pytest.fixture
def tls_base(ten_days: tuple[Path, Path]) -> Iterator[str]:
    """https://127.0.0.1:port of an HTTPS server with the 10-day certificate; /health is 200."""
    cert, key = ten_days
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with serve(tls=context) as routes:
        routes.health("/health", "pass")
        yield routes.base


def test_not_after_reads_what_openssl_reads(ten_days: tuple[Path, Path]) -> None:
    cert, _ = ten_days
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    out = subprocess.run(
        ["openssl", "x509", "-noout", "-enddate", "-in", str(cert)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    expected = datetime.strptime(out.strip().split("=", 1)[1], "%b %d %H:%M:%S %Y %Z")
    assert not_after(der) == expected.replace(tzinfo=UTC)
    with pytest.raises(ValueError, match="DER"):
        not_after(der[:40])


def test_certificate_expiration_of_tls_and_https_endpoints(
    cli: Cli, tls_base: str, ten_days: tuple[Path, Path], tmp_path: Path
) -> None:
    cert, _ = ten_days
    port = tls_base.rsplit(":", 1)[1]
    config = _config(
        tmp_path,
        f"  - {{name: tls ok, url: 'tls://127.0.0.1:{port}'}}\n"
        f"  - {{name: tls 30d, url: 'tls://127.0.0.1:{port}',"
        " conditions: ['[CERTIFICATE_EXPIRATION] > 720h']}\n"
        f"  - name: https ok\n    url: {tls_base}/health\n"
        "    conditions: ['[STATUS] == 200', '[CERTIFICATE_EXPIRATION] > 48h']\n"
        f"  - name: https 30d\n    url: {tls_base}/health\n"
        "    conditions: ['[CERTIFICATE_EXPIRATION] > 720h']\n",
        defaults=f"defaults: {{ca_cert: {cert}}}\n",
    )
    result = cli("health", "-c", config, "--json")
    assert result.code == ExitCode.CHECK_FAILED, result.stderr
    rows = {r["check"]: r for r in _rows(result)}
    assert {name: r["status"] for name, r in rows.items()} == {
        "tls ok": "pass",
        "tls 30d": "fail",
        "https ok": "pass",
        "https 30d": "fail",
    }
    # 10 days less the seconds since openssl made it: 9.9d or 10d
    assert rows["tls ok"]["detail"] in (
        "connected, certificate expires in 9.9d",
        "connected, certificate expires in 10d",
    )
    failed = rows["tls 30d"]["detail"]
    assert failed.startswith("[CERTIFICATE_EXPIRATION] (") and failed.endswith(") > 720h")
    assert rows["https 30d"]["detail"] == failed + ", release r-42"  # serve()'s body


def test_an_untrusted_certificate_fails_unless_the_config_says_insecure(
    cli: Cli, tls_base: str, tmp_path: Path
) -> None:
    port = tls_base.rsplit(":", 1)[1]
    endpoints = (
        f"  - {{name: tls, url: 'tls://127.0.0.1:{port}'}}\n"
        f"  - {{name: https, url: '{tls_base}/health',"
        " conditions: ['[CERTIFICATE_EXPIRATION] > 48h']}\n"
    )
    verified = cli("health", "-c", _config(tmp_path, endpoints), "--json")
    assert verified.code == ExitCode.CHECK_FAILED
    details = [r["detail"] for r in _rows(verified)]
    assert details == ["TLS: CERTIFICATE_VERIFY_FAILED"] * 2
    insecure = _config(tmp_path, endpoints, defaults="defaults: {insecure: true}\n")
    result = cli("health", "-c", insecure, "--json")
    assert result.code == 0, result.stdout
    assert [r["status"] for r in _rows(result)] == ["pass", "pass"]


def test_certificate_expiration_of_a_plain_endpoint_says_why_it_fails(
    cli: Cli, listener: int, tmp_path: Path
) -> None:
    config = _config(
        tmp_path,
        f"  - url: 'tcp://127.0.0.1:{listener}'\n"
        "    conditions: ['[CERTIFICATE_EXPIRATION] > 1h']\n",
    )
    result = cli("health", "-c", config, "--json")
    assert result.code == ExitCode.CHECK_FAILED
    assert _rows(result)[0]["detail"] == (
        "[CERTIFICATE_EXPIRATION] > 1h: a tcp:// probe has no certificate (use tls://)"
    )


# --- DNS ------------------------------------------------------------------------------


def test_dns_localhost_resolves_and_an_invalid_name_does_not(cli: Cli, tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        "  - url: dns://localhost\n"
        "  - url: dns://scalectl-probe.invalid\n"
        "  - {name: gone, url: 'dns://scalectl-probe.invalid',"
        " conditions: ['[DNS_RCODE] == NXDOMAIN']}\n",
        defaults="defaults: {timeout: 5s}\n",
    )
    result = cli("health", "-c", config, "--json")
    rows = _rows(result)
    if rows[1]["detail"].startswith(("no answer", "[DNS_RCODE] (SERVFAIL)")):
        pytest.skip(f"the system resolver cannot answer for .invalid here: {rows[1]['detail']}")
    assert result.code == ExitCode.CHECK_FAILED
    assert rows[0]["status"] == "pass" and rows[0]["detail"].startswith("NOERROR: ")
    assert set(rows[0]["detail"].removeprefix("NOERROR: ").split()) <= {"127.0.0.1", "::1"}
    assert (rows[1]["status"], rows[1]["detail"]) == (
        "fail",
        "[DNS_RCODE] (NXDOMAIN) == NOERROR",
    )
    assert (rows[2]["status"], rows[2]["detail"]) == ("pass", "NXDOMAIN")


def test_dns_urls_are_config_only(cli: Cli) -> None:
    # URL arguments stay http(s): a tcp:// argument is bad input, not probed.
    result = cli("health", "tcp://127.0.0.1:9")
    assert result.code == ExitCode.BAD_INPUT
    assert "expected http:// or https://" in result.stderr
    with pytest.raises(InputError):
        from scalectl.health.targets import from_url

        from_url("dns://localhost")
