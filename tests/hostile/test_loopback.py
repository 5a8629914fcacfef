"""Issue 11, findings 5 (URLs in state.json) and 6 (one loopback check): hosts that only
look like loopback are refused before anything is sent, real loopback still passes.

No request goes to a non-loopback address here: every refusal happens before Locust
starts or before health probes, and the only listeners are on loopback."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from scalectl.errors import ExitCode, InputError
from scalectl.loadtest.target import check_host
from scalectl.netguard import url_problem
from scalectl.stack.state import load
from tests.conftest import Result, fixture_path
from tests.health.server import serve

Cli = Callable[..., Result]

KNOWN = fixture_path("locust", "known.py")

# This machine's own non-loopback address, if it has one (a literal: nothing resolves it).
OWN = next(
    (
        a
        for a in {i[4][0] for i in socket.getaddrinfo(socket.gethostname(), None)} | {"192.0.2.2"}
        if not a.startswith(("127.", "::1"))
    ),
    "192.0.2.2",
)

BYPASSES = [
    "http://localhost.example.com",  # prefix "localhost"
    "http://127.0.0.1.example.com:8080",  # prefix "127."
    "http://localhost.invalid",  # never resolves: refused, not waited on
    "http://127.0.0.1@evil.example/",  # user info: the host is evil.example
    "http://evil.example\\@127.0.0.1/",  # urlsplit sees 127.0.0.1, other parsers evil.example
    "http://127.0.0.1:80@evil.example/",
    "http://[::ffff:8.8.8.8]/",  # IPv4-mapped 8.8.8.8
    "http://[::1.2.3.4]/",  # prefix "::1", IPv4-compatible 1.2.3.4
    "http://2130706433/",  # inet_aton's decimal 127.0.0.1
    "http://0x7f000001/",  # and hex
    "http://127.1/",  # and short
    "http://134744072/",  # decimal 8.8.8.8
    f"http://{OWN}:8000/" if ":" not in OWN else f"http://[{OWN}]:8000/",
]


@contextmanager
def listening(family: socket.AddressFamily, address: str) -> Iterator[int]:
    """A socket that accepts connections on a loopback address: check_host only connects."""
    sock = socket.socket(family)
    sock.bind((address, 0))
    sock.listen()
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


@pytest.mark.parametrize("url", BYPASSES)
def test_loadtest_refuses_hosts_that_only_look_local(cli: Cli, url: str) -> None:
    result = cli("loadtest", KNOWN, "-H", url, "-t", "3s")
    assert result.code == ExitCode.BAD_INPUT, result.stdout + result.stderr
    # The new check's reasons. The old prefix test let some through (then "cannot
    # connect", or load sent) and refused others with a bare "is not a loopback address;".
    reasons = ("loopback address: it ", "loopback address (127", "write an address", "plain host")
    assert any(reason in result.stderr for reason in reasons), result.stderr
    assert "loadtest known.py ->" not in result.stderr  # refused before any load


@pytest.mark.parametrize("url", BYPASSES)
def test_checklists_and_drills_share_the_check(url: str) -> None:
    from scalectl.checklist.verifiers.base import require_loopback
    from scalectl.errors import CheckFailed

    assert url_problem(url) is not None
    with pytest.raises(CheckFailed, match="checklists only probe this machine"):
        require_loopback(url)


def test_allow_host_is_an_exact_match() -> None:
    assert url_problem("http://evil.example/", ["evil.example"]) is None
    assert url_problem("http://localhost.evil.example/", ["evil.example"]) is not None
    assert url_problem("http://evil.example.com/", ["evil.example"]) is not None


@pytest.mark.parametrize(
    ("family", "bind", "host"),
    [
        (socket.AF_INET, "127.0.0.1", "127.0.0.1"),
        (socket.AF_INET, "127.5.6.7", "127.5.6.7"),
        (socket.AF_INET, "127.0.0.1", "localhost"),
        (socket.AF_INET6, "::1", "[::1]"),
    ],
)
def test_real_loopback_still_passes(family: socket.AddressFamily, bind: str, host: str) -> None:
    with listening(family, bind) as port:
        assert check_host(f"http://{host}:{port}", ()) == (host.strip("[]"), port)


def _tampered(state_dir: Path, url: str) -> Path:
    state_dir.mkdir(parents=True)
    member = {"name": "api-1", "kind": "app", "pid": 1, "create_time": 0.0, "log": "x"}
    state = {
        "plan": "",
        "profile": "local",
        "state_dir": str(state_dir),
        "started_at": 0.0,
        "members": [{**member, "url": url, "health_url": f"{url}/health/ready"}],
        "urls": {"app": url},
    }
    path = state_dir / "state.json"
    path.write_text(json.dumps(state))
    return path


@pytest.mark.parametrize("url", ["http://localhost.example.com:8000", f"http://{OWN}:8000"])
def test_a_tampered_state_url_is_refused(cli: Cli, tmp_path: Path, url: str) -> None:
    path = _tampered(tmp_path / ".scalectl" / "stack", url)
    with pytest.raises(InputError, match="refusing a stack state") as raised:
        load(path.parent)
    assert str(path) in raised.value.message
    health = cli(
        "health", "--state-dir", path.parent, "--token-env", "T", env={"T": "secret-token"}
    )
    assert health.code == ExitCode.BAD_INPUT, health.stdout + health.stderr
    assert str(path) in health.stderr and "refusing a stack state" in health.stderr
    assert "secret-token" not in health.stdout + health.stderr


def test_loadtest_refuses_a_tampered_state(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tampered(tmp_path / ".scalectl" / "stack", "http://127.0.0.1.example.com:8000")
    monkeypatch.chdir(tmp_path)  # loadtest's default target is ./.scalectl/stack's app
    result = cli("loadtest", KNOWN, "-t", "3s")
    assert result.code == ExitCode.BAD_INPUT, result.stderr
    assert "state.json: refusing a stack state" in result.stderr


def test_the_token_stays_on_loopback(cli: Cli, tmp_path: Path) -> None:
    """A config endpoint elsewhere does not get the token; on loopback it does."""
    with serve() as routes:
        routes.health("/ready", "pass")
        config = tmp_path / "health.yaml"
        config.write_text(
            "version: 1\nendpoints:\n"
            f"  - url: {routes.base}/ready\n"
            "  - url: http://localhost.example.com:8000/ready\n"
        )
        env = {"T": "secret-token"}
        refused = cli("health", "-c", config, "--token-env", "T", env=env)
        assert refused.code == ExitCode.BAD_INPUT, refused.stdout + refused.stderr
        assert "--token-env T: not sent to http://localhost.example.com:8000" in refused.stderr
        assert routes.seen == []  # nothing was probed, not even the loopback endpoint
        config.write_text(f"version: 1\nendpoints:\n  - url: {routes.base}/ready\n")
        sent = cli("health", "-c", config, "--token-env", "T", env=env)
        assert sent.code == ExitCode.OK, sent.stdout + sent.stderr
        assert routes.seen[-1].get("authorization") == "Bearer secret-token"
