"""Run checks concurrently (httpx async; tcp://, tls://, dns:// in sockets.py), judge each
response, and summarise as rows.

One row per check (the endpoint itself) plus one per component of an
application/health+json body. Healthy means no row fails (and, with strict, none warns).
Synchronous entry points run their own event loop, so plain code can call them.

A check with rate() or increase() in its conditions scrapes its URL twice, `rate_window`
apart; a Prober that probes in rounds (--watch, --wait) reuses the previous round's scrape
instead, so only its first round waits.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from scalectl.errors import InputError
from scalectl.health import healthjson, sockets
from scalectl.health.checks import Check, default_checks
from scalectl.health.conditions import ConditionResult, Observation, evaluate
from scalectl.health.healthjson import HealthDoc, HealthJsonError, UnknownStatus
from scalectl.health.targets import from_state
from scalectl.health.vocabulary import ANY, Status, Vocabulary

DEFAULT_STATE_DIR = Path(".scalectl/stack")
RATE_WINDOW = 5.0  # seconds between the two scrapes rate() and increase() compare
# A body larger than this fails the check unread: a probe must not fill memory.
MAX_BODY_BYTES = 16 * 2**20


@dataclass(frozen=True)
class ProbeOptions:
    """How every check of a run is probed unless the check says otherwise: its time limit, extra
    headers, TLS verification, a cap near a deadline, the rate() window and the status
    vocabulary."""

    timeout: float = 5.0  # per check without its own, the whole exchange (connect ... body)
    headers: tuple[tuple[str, str], ...] = ()
    verify: bool | ssl.SSLContext = True
    cap: float | None = None  # no check may take longer (the time left before a deadline)
    rate_window: float = RATE_WINDOW  # per check without its own
    vocabulary: Vocabulary = ANY  # per check without its own


@dataclass(frozen=True)
class Row:
    """One line of a health table: a check's endpoint (`component` None) or one health+json
    component of its response."""

    target: str  # api-1, nginx, 127.0.0.1:8080
    url: str
    check: str  # the check's name: its path, or the endpoint's name from a config
    component: str | None  # None for the endpoint itself; else a health+json component
    status: Status
    latency_ms: float | None
    detail: str
    release_id: str | None = None
    conditions: tuple[ConditionResult, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        """(target, URL): the check this row belongs to."""
        return (self.target, self.url)

    def line(self) -> str:
        """One line of evidence: `api-1 http://127.0.0.1:18001/health/ready: pass 12 ms`."""
        where = f"{self.target} {self.url}" + (f" {self.component}" if self.component else "")
        latency = f" {self.latency_ms:.0f} ms" if self.latency_ms is not None else ""
        return f"{where}: {self.status}{latency}" + (f"; {self.detail}" if self.detail else "")

    def to_json(self) -> dict[str, Any]:
        """The row as `scalectl health --json` reports it."""
        return {
            "target": self.target,
            "url": self.url,
            "check": self.check,
            "component": self.component,
            "status": self.status,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 1),
            "detail": self.detail,
            "release_id": self.release_id,
            "conditions": [
                {"condition": c.condition, "ok": c.ok, "detail": c.detail} for c in self.conditions
            ],
        }


@dataclass(frozen=True)
class HealthSummary:
    """The rows of one probe round and whether they are healthy (with `strict`, warn is not)."""

    healthy: bool
    rows: list[Row]
    strict: bool = False
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Every row as one line of evidence."""
        return [row.line() for row in self.rows]

    def failing(self) -> list[Row]:
        """The rows that make the summary unhealthy."""
        return [r for r in self.rows if not _ok(r.status, self.strict)]

    def counts(self) -> dict[str, int]:
        """How many rows pass, warn and fail."""
        return {s: sum(r.status == s for r in self.rows) for s in ("pass", "warn", "fail")}

    def to_json(self) -> dict[str, Any]:
        """The summary as `scalectl health --json` reports it."""
        return {
            "healthy": self.healthy,
            "strict": self.strict,
            "counts": self.counts(),
            "rows": [r.to_json() for r in self.rows],
            "notes": list(self.notes),
        }


def _ok(status: Status, strict: bool) -> bool:
    return status == "pass" or (status == "warn" and not strict)


def summarize(rows: Sequence[Row], *, strict: bool, notes: Sequence[str] = ()) -> HealthSummary:
    """A summary of `rows`: healthy when none fails (and, with `strict`, none warns)."""
    healthy = all(_ok(r.status, strict) for r in rows)
    return HealthSummary(healthy, list(rows), strict, list(notes))


def judge(check: Check, obs: Observation, vocabulary: Vocabulary = ANY) -> list[Row]:
    """The rows for one check: the endpoint's, then one per health+json component. The
    check's own vocabulary, else `vocabulary`, says what the body's status words mean."""
    results = tuple(evaluate(c, obs) for c in check.conditions)
    failed = [r for r in results if not r.ok]
    doc: HealthDoc | None = None
    problem = ""
    if obs.connected:
        try:
            doc = healthjson.parse(obs.content_type, obs.body, check.vocabulary or vocabulary)
        except UnknownStatus as exc:
            problem = f"HTTP {obs.status}, {exc}"
        except HealthJsonError as exc:
            problem = f"invalid {healthjson.MEDIA_TYPE}: {exc}"
    statuses: list[Status] = ["fail" if failed or problem else "pass"]
    if doc is not None:
        statuses.append(doc.status)
    status = healthjson.worst(statuses)
    if not obs.connected:
        detail = obs.error
        if not failed:
            detail += " (as the conditions expect)"
    elif failed:
        detail = "; ".join(r.detail for r in failed)
    elif problem:
        detail = problem
    elif doc is not None and doc.status != "pass":
        detail = f"HTTP {obs.status}, body status {doc.status}"
        if doc.output:
            detail += f": {doc.output}"
    else:
        detail = sockets.summary(check.url, obs) or f"HTTP {obs.status}"
    release = doc.release_id if doc is not None else None
    if release:
        detail += f", release {release}"
    rows = [
        Row(
            check.target.name,
            check.url,
            check.name,
            None,
            status,
            obs.elapsed_ms,
            detail,
            release,
            results,
        )
    ]
    for component in doc.components if doc is not None else ():
        text = ", ".join(t for t in (component.observed, component.output) if t)
        rows.append(
            Row(
                check.target.name,
                check.url,
                check.name,
                component.name,
                component.status,
                None,
                text,
                release,
            )
        )
    return rows


async def _observe(
    client: httpx.AsyncClient, check: Check, options: ProbeOptions, limit: float
) -> Observation:
    """One GET; `limit` bounds the whole exchange (connect, TLS, headers, body)."""
    timeout = max(limit, 0.05)
    headers = dict(options.headers)
    headers.update(check.headers)
    # Uncompressed: httpx inflates a chunk in one go, so a few hundred bytes of brotli could
    # become hundreds of MiB before MAX_BODY_BYTES is looked at.
    if not any(k.lower() == "accept-encoding" for k in headers):
        headers["Accept-Encoding"] = "identity"
    taken_at = time.monotonic()
    started = time.perf_counter()

    def elapsed() -> float:
        return (time.perf_counter() - started) * 1000

    try:
        # asyncio.timeout bounds the whole exchange; httpx's only each network step.
        async with (
            asyncio.timeout(timeout),
            client.stream("GET", check.url, headers=headers, timeout=timeout) as response,
        ):
            body = bytearray()
            encoding = unasked_encoding(response.headers, headers)
            if encoding:
                return Observation(
                    connected=False,
                    elapsed_ms=elapsed(),
                    error=f"the answer is compressed ({encoding}) though identity was asked",
                    taken_at=taken_at,
                )
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_BODY_BYTES:
                    return Observation(
                        connected=False,
                        elapsed_ms=elapsed(),
                        error=f"the answer is larger than {MAX_BODY_BYTES // 2**20} MiB",
                        taken_at=taken_at,
                    )
    except (TimeoutError, httpx.TimeoutException):
        return Observation(
            connected=False,
            elapsed_ms=elapsed(),
            error=f"no response within {timeout:g}s",
            taken_at=taken_at,
        )
    except (httpx.HTTPError, OSError, ssl.SSLError) as exc:
        return Observation(
            connected=False, elapsed_ms=elapsed(), error=describe(exc), taken_at=taken_at
        )
    return Observation(
        connected=True,
        status=response.status_code,
        elapsed_ms=elapsed(),
        body=bytes(body),
        content_type=response.headers.get("content-type", ""),
        taken_at=taken_at,
    )


async def _check(
    client: httpx.AsyncClient,
    check: Check,
    options: ProbeOptions,
    previous: Observation | None,
) -> Observation:
    """The observation the check's conditions are judged on. With rate() or increase(): a
    scrape at least `rate_window` after an earlier one (`previous`, an earlier round's, when
    there is one; else a first scrape now), with the earlier attached as its `previous`.
    Everything fits in `options.cap`."""
    started = time.monotonic()
    timeout = check.timeout or options.timeout
    cap = options.cap

    def left() -> float:
        return timeout if cap is None else min(timeout, cap - (time.monotonic() - started))

    if sockets.scheme_of(check.url) in sockets.SCHEMES:
        return await sockets.observe(check.url, options.verify, left())
    if check.needs_certificate:
        obs = await _observe(client, check, options, left())
        await sockets.add_certificate(obs, check.url, options.verify, left())
        return obs
    if not check.needs_two_scrapes:
        return await _observe(client, check, options, left())
    first = previous
    if first is None or not first.connected:
        first = await _observe(client, check, options, left())
        if not first.connected:
            return first
    due = first.taken_at + (check.rate_window or options.rate_window)
    if cap is not None:  # near a deadline: half of what is left, the rest to answer
        now = time.monotonic()
        due = min(due, now + max(0.0, cap - (now - started)) / 2)
    await asyncio.sleep(max(0.0, due - time.monotonic()))
    second = await _observe(client, check, options, left())
    second.previous = first
    return second


def describe(exc: BaseException) -> str:
    """A short reason for a failed exchange: what a person needs to act on."""
    chain: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and len(chain) < 10:  # httpx -> httpcore -> anyio -> OSError
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return "connection refused"
    text = str(exc) or type(exc).__name__
    if any(isinstance(e, ssl.SSLError) for e in chain) or "certificate" in text.lower():
        tls_error = next((e for e in chain if isinstance(e, ssl.SSLError)), exc)
        return f"TLS: {getattr(tls_error, 'reason', None) or tls_error}"
    if any(isinstance(e, socket.gaierror) for e in chain):
        return f"unknown host ({text})"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"connection closed without a response ({text})"
    return f"{type(exc).__name__}: {text}"


async def observe_all(
    checks: Sequence[Check],
    options: ProbeOptions,
    previous: dict[tuple[str, str], Observation] | None = None,
) -> list[Observation]:
    """Every check once, concurrently."""
    earlier = previous or {}
    # trust_env=False: proxies from the environment would measure the proxy, not the target.
    async with httpx.AsyncClient(
        verify=options.verify, trust_env=False, follow_redirects=False
    ) as client:
        return list(
            await asyncio.gather(*(_check(client, c, options, earlier.get(c.key)) for c in checks))
        )


class Prober:
    """Probes the same checks round after round, keeping each check's last observation so
    that rate() and increase() compare with the previous round instead of waiting."""

    def __init__(
        self,
        checks: Sequence[Check],
        options: ProbeOptions = ProbeOptions(),
        *,
        strict: bool = False,
        notes: Sequence[str] = (),
    ) -> None:
        self.checks = list(checks)
        self.options = options
        self.strict = strict
        self.notes = list(notes)
        self.previous: dict[tuple[str, str], Observation] = {}
        # One event loop for every round, closed by close(): a loop made and closed per
        # round (asyncio.run) could be interrupted by Ctrl-C while closing, and Python then
        # printed a traceback from the unclosed loop at exit.
        self._runner: asyncio.Runner | None = None

    def round(self, timeout_cap: float | None = None) -> HealthSummary:
        """Probe every check once; `timeout_cap` shortens the per-check time (a --wait
        deadline that is near)."""
        options = self.options if timeout_cap is None else replace(self.options, cap=timeout_cap)
        if self._runner is None:
            self._runner = asyncio.Runner()
        observations = self._runner.run(observe_all(self.checks, options, self.previous))
        rows: list[Row] = []
        for check, obs in zip(self.checks, observations, strict=True):
            rows.extend(judge(check, obs, self.options.vocabulary))
            obs.previous = None  # keep one scrape per check, not a chain of every round
            if obs.connected:
                self.previous[check.key] = obs
            else:
                self.previous.pop(check.key, None)
        return summarize(rows, strict=self.strict, notes=self.notes)

    def close(self) -> None:
        """Close the rounds' event loop; the next round opens another."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            runner.close()


def unasked_encoding(answer: Mapping[str, str], asked: Mapping[str, str]) -> str | None:
    """The answer's Content-Encoding when the request asked for identity and got something
    else (not to be inflated: its size is unbounded); None otherwise."""
    wanted = next((v for k, v in asked.items() if k.lower() == "accept-encoding"), "")
    encoding = answer.get("content-encoding", "").strip().lower()
    if wanted.strip().lower() == "identity" and encoding not in ("", "identity"):
        return encoding
    return None


def probe(
    checks: Sequence[Check],
    options: ProbeOptions = ProbeOptions(),
    *,
    strict: bool = False,
    notes: Sequence[str] = (),
    timeout_cap: float | None = None,
) -> HealthSummary:
    """Probe every check once, concurrently; `timeout_cap` shortens the per-check timeout
    (a --wait deadline that is near)."""
    prober = Prober(checks, options, strict=strict, notes=notes)
    try:
        return prober.round(timeout_cap)
    finally:
        prober.close()


def probe_stack(
    state_dir: Path = DEFAULT_STATE_DIR, *, timeout: float = 5.0, strict: bool = False
) -> HealthSummary:
    """The local stack's default checks: each app instance directly (liveness, readiness,
    /health/comprehensive and /metrics) and the balancer. InputError when no stack runs in
    `state_dir`."""
    targets, facts, notes = from_state(state_dir)
    return probe(
        default_checks(targets, facts), ProbeOptions(timeout=timeout), strict=strict, notes=notes
    )


# --- TLS options from flags ----------------------------------------------------------


def tls(insecure: bool, ca_cert: Path | None) -> bool | ssl.SSLContext:
    """TLS verification from --insecure and --ca-cert: False, True (the system's CAs), or a
    context trusting the bundle. Raises InputError for both flags together, or a bundle that
    is missing or not PEM."""
    if insecure and ca_cert is not None:
        raise InputError("give --insecure or --ca-cert, not both")
    if insecure:
        return False
    if ca_cert is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(ca_cert))
    except FileNotFoundError:
        raise InputError(f"--ca-cert {ca_cert}: no such file") from None
    except (OSError, ssl.SSLError) as exc:
        raise InputError(f"--ca-cert {ca_cert}: not a PEM certificate bundle ({exc})") from None
