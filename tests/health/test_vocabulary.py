"""Status vocabularies: each built-in's words, a config's own map, an unknown word, and
what warn (degraded) means for the exit code. Against a real HTTP server on a free
loopback port that answers plain application/json, as the guides' services do."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scalectl.errors import ExitCode
from scalectl.health.vocabulary import BUILTIN, MAX_WORDS
from tests.conftest import Result
from tests.health.server import Answer, Routes, serve

Cli = Callable[..., Result]


@pytest.fixture
def app() -> Iterator[Routes]:
    with serve() as routes:
        yield routes


def answer(app: Routes, word: str, path: str = "/health", **extra: Any) -> str:
    body = json.dumps({"status": word, **extra}).encode()
    app.answers[path] = Answer(200, body, "application/json")
    return app.base + path


def endpoint_row(result: Result) -> dict[str, Any]:
    rows = json.loads(result.stdout)["rows"]
    found: dict[str, Any] = rows[0]
    return found


BUILTIN_WORDS = [
    ("ietf", "pass", "pass"),
    ("ietf", "OK", "pass"),
    ("ietf", "warn", "warn"),
    ("ietf", "Fail", "fail"),
    ("actuator", "UP", "pass"),
    ("actuator", "UNKNOWN", "warn"),
    ("actuator", "DOWN", "fail"),
    ("actuator", "out_of_service", "fail"),
    ("healthy", "healthy", "pass"),
    ("healthy", "Degraded", "warn"),
    ("healthy", "critical", "fail"),
    ("healthy", "unhealthy", "fail"),
]


@pytest.mark.parametrize(("vocabulary", "word", "status"), BUILTIN_WORDS)
def test_each_builtin_word(cli: Cli, app: Routes, vocabulary: str, word: str, status: str) -> None:
    url = answer(app, word)
    for chosen in (vocabulary, "any", None):  # "any", the default, knows every built-in word
        flags = ["--vocabulary", chosen] if chosen else []
        result = cli("health", url, *flags, "--json")
        assert endpoint_row(result)["status"] == status, (chosen, result.stderr)
        assert result.code == (ExitCode.CHECK_FAILED if status == "fail" else 0)


def test_a_200_that_says_degraded_warns_by_default(cli: Cli, app: Routes) -> None:
    result = cli("health", answer(app, "degraded"), "--json")
    assert result.code == 0
    row = endpoint_row(result)
    assert (row["status"], row["detail"]) == ("warn", "HTTP 200, body status warn")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ((), "status 'foo' is not in the vocabulary any"),
        (("--vocabulary", "healthy"), "status 'foo' is not in the vocabulary healthy"),
    ],
)
def test_an_unknown_word_fails_with_its_reason(
    cli: Cli, app: Routes, flags: tuple[str, ...], message: str
) -> None:
    result = cli("health", answer(app, "foo"), *flags, "--json")
    assert result.code == ExitCode.CHECK_FAILED
    row = endpoint_row(result)
    assert row["status"] == "fail"
    assert row["detail"].startswith(f"HTTP 200, {message} (")


def test_a_word_of_another_vocabulary_is_unknown(cli: Cli, app: Routes) -> None:
    result = cli("health", answer(app, "pass"), "--vocabulary", "actuator", "--json")
    assert result.code == ExitCode.CHECK_FAILED
    assert endpoint_row(result)["detail"] == (
        "HTTP 200, status 'pass' is not in the vocabulary actuator "
        "(up, unknown, down, out_of_service)"
    )


def test_a_component_with_an_unknown_word_fails(cli: Cli, app: Routes) -> None:
    checks = {"db:responseTime": [{"status": "sleepy", "output": "slow"}]}
    result = cli("health", answer(app, "healthy", checks=checks), "--json")
    assert result.code == ExitCode.CHECK_FAILED
    rows = json.loads(result.stdout)["rows"]
    assert [(r["component"], r["status"]) for r in rows] == [
        (None, "pass"),
        ("db:responseTime", "fail"),
    ]
    assert rows[1]["detail"].startswith("status 'sleepy' is not in the vocabulary any (")
    assert rows[1]["detail"].endswith("; slow")


def test_an_unknown_vocabulary_flag_is_bad_input(cli: Cli, app: Routes) -> None:
    result = cli("health", answer(app, "pass"), "--vocabulary", "gatus")
    assert result.code == ExitCode.BAD_INPUT
    assert result.stderr == (
        f"error: --vocabulary unknown vocabulary 'gatus'; built in: {', '.join(BUILTIN)}\n"
    )


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "health.yaml"
    path.write_text(text)
    return path


def test_a_custom_map_in_the_config(cli: Cli, app: Routes, tmp_path: Path) -> None:
    for word in ("green", "Yellow", "red", "healthy"):
        answer(app, word, f"/{word}")
    path = config(
        tmp_path,
        "version: 1\n"
        "endpoints:\n"
        + "".join(
            f"  - {{name: {w}, url: '{app.base}/{w}',"
            " vocabulary: {Green: pass, yellow: warn, RED: fail}}\n"
            for w in ("green", "Yellow", "red", "healthy")
        ),
    )
    result = cli("health", "-c", path, "--json")
    assert result.code == ExitCode.CHECK_FAILED
    rows = json.loads(result.stdout)["rows"]
    assert [(r["check"], r["status"]) for r in rows] == [
        ("green", "pass"),
        ("Yellow", "warn"),
        ("red", "fail"),
        ("healthy", "fail"),
    ]
    assert rows[3]["detail"] == (
        "HTTP 200, status 'healthy' is not in the vocabulary custom (green, yellow, red)"
    )


def test_an_endpoint_vocabulary_wins_over_the_flag_and_defaults(
    cli: Cli, app: Routes, tmp_path: Path
) -> None:
    answer(app, "UP", "/own")
    answer(app, "degraded", "/inherited")
    path = config(
        tmp_path,
        "version: 1\n"
        "defaults: {vocabulary: ietf}\n"
        "endpoints:\n"
        f"  - {{name: own, url: '{app.base}/own', vocabulary: actuator}}\n"
        f"  - {{name: inherited, url: '{app.base}/inherited'}}\n",
    )
    rows = json.loads(cli("health", "-c", path, "--json").stdout)["rows"]
    assert [(r["check"], r["status"]) for r in rows] == [("own", "pass"), ("inherited", "fail")]
    rows = json.loads(cli("health", "-c", path, "--vocabulary", "healthy", "--json").stdout)["rows"]
    assert [(r["check"], r["status"]) for r in rows] == [("own", "pass"), ("inherited", "warn")]


def test_a_bad_vocabulary_in_the_config_is_bad_input_at_its_place(cli: Cli, tmp_path: Path) -> None:
    many = ", ".join(f"w{i}: pass" for i in range(MAX_WORDS + 1))
    path = config(
        tmp_path,
        "version: 1\n"
        "defaults: {vocabulary: gatus}\n"
        "endpoints:\n"
        "  - url: http://127.0.0.1:9/a\n"
        "    vocabulary: {'bad word': pass, UP: maybe, up: pass}\n"
        "  - url: http://127.0.0.1:9/b\n"
        f"    vocabulary: {{{many}}}\n"
        "  - url: http://127.0.0.1:9/c\n"
        "    vocabulary: {}\n"
        "  - url: http://127.0.0.1:9/d\n"
        "    vocabulary: [pass]\n",
    )
    result = cli("health", "-c", path)
    assert result.code == ExitCode.BAD_INPUT
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: 7 problems in the input",
        f"{path}:2:24 defaults.vocabulary: unknown vocabulary 'gatus'; built in: "
        "any, ietf, actuator, healthy",
        f"{path}:5:18 endpoints[0].vocabulary.bad word: 'bad word' is not a status word: "
        "a letter, then up to 31 of A-Z a-z 0-9 _ . -",
        f"{path}:5:40 endpoints[0].vocabulary.UP: must be pass, warn or fail, got 'maybe'",
        f"{path}:5:47 endpoints[0].vocabulary.up: 'up' repeats 'UP' (words match in any case)",
        f"{path}:7:17 endpoints[1].vocabulary: at most {MAX_WORDS} words, got {MAX_WORDS + 1}",
        f"{path}:9:17 endpoints[2].vocabulary: must map at least one word",
        f"{path}:11:17 endpoints[3].vocabulary: expected a built-in vocabulary's name or a "
        "map {word: pass|warn|fail}",
    ]


@pytest.mark.parametrize(
    ("flags", "code"),
    [
        ((), 0),
        (("--warn-is", "pass"), 0),
        (("--warn-is", "fail"), ExitCode.CHECK_FAILED),
        (("--strict",), ExitCode.CHECK_FAILED),
        (("--strict", "--warn-is", "fail"), ExitCode.CHECK_FAILED),
        (("--wait", "--timeout", "3s", "--interval", "0.1s"), 0),
        (
            ("--wait", "--timeout", "1s", "--interval", "0.1s", "--warn-is", "fail"),
            ExitCode.CHECK_FAILED,
        ),
    ],
)
def test_exit_code_of_degraded_under_each_policy(
    cli: Cli, app: Routes, flags: tuple[str, ...], code: int
) -> None:
    result = cli("health", answer(app, "degraded"), "--vocabulary", "healthy", *flags)
    assert result.code == code, result.stderr
    if code and "--wait" not in flags:
        assert result.stderr == "error: unhealthy: 1 of 1 rows failing (warn counts as fail)\n"


def test_critical_fails_under_either_policy(cli: Cli, app: Routes) -> None:
    url = answer(app, "critical")
    for policy in ("pass", "fail"):
        assert cli("health", url, "--warn-is", policy).code == ExitCode.CHECK_FAILED


def test_the_config_sets_the_policy_and_the_flag_wins(
    cli: Cli, app: Routes, tmp_path: Path
) -> None:
    path = config(
        tmp_path,
        "version: 1\n"
        "defaults: {warn_is: fail}\n"
        f"endpoints:\n  - url: '{answer(app, 'degraded')}'\n",
    )
    assert cli("health", "-c", path).code == ExitCode.CHECK_FAILED
    assert cli("health", "-c", path, "--warn-is", "pass").code == 0


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--warn-is", "maybe"), "error: --warn-is maybe: expected pass or fail\n"),
        (
            ("--strict", "--warn-is", "pass"),
            "error: --strict is --warn-is fail; give one of them\n",
        ),
    ],
)
def test_a_bad_policy_is_bad_input(
    cli: Cli, app: Routes, flags: tuple[str, ...], message: str
) -> None:
    result = cli("health", answer(app, "degraded"), *flags)
    assert (result.code, result.stderr) == (ExitCode.BAD_INPUT, message)
