"""What one `scalectl health` run probes and how: the flags, the config file, the plan or
the running stack, and the defaults, resolved into checks and probe options.

Every flag and the config are checked up front and all problems reported together, so
one run lists everything that is wrong before anything is probed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from scalectl.duration import parse_duration
from scalectl.errors import InputError
from scalectl.health import checks as checks_mod
from scalectl.health import headers as headers_mod
from scalectl.health import probe as probe_mod
from scalectl.health import targets as targets_mod
from scalectl.health.checks import Check
from scalectl.health.conditions import Condition, ConditionError, parse_condition
from scalectl.health.probe import ProbeOptions
from scalectl.health.sockets import scheme_of
from scalectl.health.vocabulary import ANY, builtin
from scalectl.health.watch import FAILURE_THRESHOLD, SUCCESS_THRESHOLD

if TYPE_CHECKING:
    from scalectl.health.config import HealthConfig

_T = TypeVar("_T")
DEFAULT_CHECK_TIMEOUT = 5.0
DEFAULT_INTERVAL = 2.0
DEFAULT_WAIT = 120.0
WATCH_AT_TERMINAL = 24 * 3600.0  # Ctrl-C ends a watch at a terminal; this bounds it anyway


@dataclass(frozen=True)
class HealthFlags:
    """The options of `scalectl health probe` as given: durations as text, None where a
    flag was left out (so the config file's defaults and then scalectl's apply)."""

    urls: Sequence[str] = ()
    plan: Path | None = None
    profile: str = "local"
    state_dir: Path = probe_mod.DEFAULT_STATE_DIR
    config_path: Path | None = None
    condition_texts: Sequence[str] = ()
    check_timeout: str | None = None
    rate_window: str | None = None
    header_texts: Sequence[str] = ()
    token_env: str | None = None
    allow_host: Sequence[str] = ()
    insecure: bool = False
    ca_cert: Path | None = None
    watch: bool = False
    wait: bool = False
    timeout: str | None = None
    interval: str | None = None
    failure_threshold: int | None = None
    success_threshold: int | None = None
    vocabulary: str | None = None
    warn_is: str | None = None  # pass | fail
    strict: bool = False  # --strict: --warn-is fail


@dataclass(frozen=True)
class HealthSettings:
    """A run, resolved: the checks, the options every probe uses, notes for the user,
    for --watch/--wait the bound, the pace and the thresholds of the rounds, and whether
    warn counts as unhealthy (the exit policy)."""

    checks: list[Check]
    options: ProbeOptions
    notes: list[str]
    timeout: float | None  # seconds; None for a single probe
    interval: float
    failure_threshold: int
    success_threshold: int
    strict: bool = False


def resolve(flags: HealthFlags, environ: Mapping[str, str], *, interactive: bool) -> HealthSettings:
    """The settings of a run from `flags`, its config file, and the plan or the running
    stack they name. `environ` holds --token-env's variable; `interactive` (at a terminal)
    lets --watch run without --timeout.

    Raises InputError listing every problem with the flags and the config at once, and
    when there is nothing to probe, no stack runs, or the token would go to a host the
    user did not name.
    """
    problems: list[str] = []

    def attempt(fn: Callable[..., _T], *args: Any) -> _T | None:
        try:
            return fn(*args)
        except InputError as exc:
            problems.extend(exc.lines or [exc.message])
            return None

    def duration(flag: str, text: str | None) -> float | None:
        if text is None:
            return None
        try:
            return parse_duration(text)
        except ValueError as exc:
            problems.append(f"{flag} {text}: {exc}")
            return None

    watch, wait = flags.watch, flags.wait
    if watch and wait:
        problems.append("give --watch or --wait, not both")
    if flags.timeout is not None and not (watch or wait):
        problems.append("--timeout bounds --watch or --wait; for one probe use --check-timeout")
    if flags.urls and flags.plan is not None:
        problems.append("give URLs or --plan, not both")
    if flags.warn_is is not None and flags.warn_is not in ("pass", "fail"):
        problems.append(f"--warn-is {flags.warn_is}: expected pass or fail")
    if flags.strict and flags.warn_is == "pass":
        problems.append("--strict is --warn-is fail; give one of them")
    vocabulary = None
    if flags.vocabulary is not None:
        try:
            vocabulary = builtin(flags.vocabulary)
        except ValueError as exc:
            problems.append(f"--vocabulary {exc}")
    seconds = {
        "check": duration("--check-timeout", flags.check_timeout),
        "timeout": duration("--timeout", flags.timeout),
        "interval": duration("--interval", flags.interval),
        "rate_window": duration("--rate-window", flags.rate_window),
    }
    parsed: list[Condition] = []
    for text in flags.condition_texts:
        try:
            parsed.append(parse_condition(text))
        except ConditionError as exc:
            problems.append(f"--condition {exc.message}")
    url_targets = [t for t in (attempt(targets_mod.from_url, u) for u in flags.urls) if t]
    extra = [h for h in (attempt(headers_mod.parse_header, h) for h in flags.header_texts) if h]
    config = attempt(_load_config, flags.config_path) if flags.config_path else None
    defaults = config.defaults if config is not None else None
    env_name = flags.token_env or (defaults.token_env if defaults else None)
    token = attempt(headers_mod.bearer, env_name, environ) if env_name else None
    if token:
        extra.append(token)
    cert = flags.ca_cert
    if cert is None and config is not None and config.defaults.ca_cert:
        cert = Path(config.source).parent / config.defaults.ca_cert  # relative to the file
    insecure = flags.insecure or bool(defaults and defaults.insecure)
    verify = attempt(probe_mod.tls, insecure, cert)
    if watch and seconds["timeout"] is None and not interactive:
        problems.append("--watch needs --timeout when not at a terminal (CI must end)")
    if problems:
        raise_problems(problems)

    notes: list[str] = []
    facts = targets_mod.PlanFacts()
    if url_targets:
        found = url_targets
    elif flags.plan is not None:
        found, facts = targets_mod.from_plan(flags.plan, flags.profile)
    elif config is not None and not config.needs_targets:
        found = []
    else:
        found, facts, notes = targets_mod.from_state(flags.state_dir)
    if config is not None:
        from scalectl.health.config import config_checks

        checks = config_checks(config, found, facts, parsed)
    else:
        checks = checks_mod.default_checks(found, facts, parsed)
    if not checks:
        raise InputError("nothing to probe: no endpoint of the config matches a target")
    if token:
        named = [t.base_url for t in url_targets]
        # tcp://, tls:// and dns:// probes send no headers, so no token either.
        sent = [c.url for c in checks if scheme_of(c.url) in targets_mod.HTTP]
        token_stays_home(sent, [*named, *flags.allow_host], env_name or "")

    header_pairs = [*(defaults.headers.items() if defaults else ()), *extra]
    check_seconds = seconds["check"] or (defaults.timeout if defaults else None)
    timeout_seconds = seconds["timeout"]
    if timeout_seconds is None and wait:
        timeout_seconds = DEFAULT_WAIT
    if timeout_seconds is None and watch:
        timeout_seconds = WATCH_AT_TERMINAL
    interval_seconds = seconds["interval"] or (
        defaults.interval if defaults and defaults.interval else DEFAULT_INTERVAL
    )
    # Rounds are the natural window: each round's scrape is the next one's first.
    window = (
        seconds["rate_window"]
        or (defaults.rate_window if defaults else None)
        or (interval_seconds if wait or watch else probe_mod.RATE_WINDOW)
    )
    warn_is = flags.warn_is or ("fail" if flags.strict else None)
    warn_is = warn_is or (defaults.warn_is if defaults else None) or "pass"
    return HealthSettings(
        checks=checks,
        options=ProbeOptions(
            timeout=check_seconds or DEFAULT_CHECK_TIMEOUT,
            headers=tuple(header_pairs),
            verify=verify if verify is not None else True,
            rate_window=window,
            vocabulary=vocabulary or (config.vocabulary if config else None) or ANY,
        ),
        notes=notes,
        timeout=timeout_seconds,
        interval=interval_seconds,
        failure_threshold=flags.failure_threshold
        or (defaults.failure_threshold if defaults else None)
        or FAILURE_THRESHOLD,
        success_threshold=flags.success_threshold
        or (defaults.success_threshold if defaults else None)
        or SUCCESS_THRESHOLD,
        strict=warn_is == "fail",
    )


def token_stays_home(urls: Sequence[str], allowed: Sequence[str], env_name: str) -> None:
    """The bearer token goes only to loopback (scalectl.netguard) or to a host the user
    named: a URL argument or --allow-host. A plan, config or stack state from someone else
    must not redirect it (issue 11, finding 5). Raises InputError naming every other host.
    """
    from scalectl.netguard import url_host, url_problem

    hosts = []
    for url in allowed:
        try:
            hosts.append(url_host(url))
        except ValueError:
            hosts.append(url)  # an --allow-host value is a bare host
    problems: dict[str, str] = {}
    for url in urls:
        try:
            host = url_host(url)
        except ValueError as exc:
            problems.setdefault(url, f"{url}: {exc}")
            continue
        if host not in problems and (problem := url_problem(url, hosts)):
            problems[host] = f"{url}: {problem}; add --allow-host {host} to send it there"
    if problems:
        raise_problems([f"--token-env {env_name}: not sent to {p}" for p in problems.values()])


def raise_problems(problems: Sequence[str]) -> None:
    """Raise InputError: the one problem, or a count with every problem as a line."""
    if len(problems) == 1:
        raise InputError(problems[0])
    raise InputError(f"{len(problems)} problems in the input", lines=list(problems))


def _load_config(path: Path) -> HealthConfig:
    # Imported here: the config's schema (pydantic) is loaded only when a config is given.
    from scalectl.health.config import load_config

    return load_config(path)
