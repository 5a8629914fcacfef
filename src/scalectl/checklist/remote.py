"""A deployment elsewhere (`checklist --target URL --prometheus URL`): what the live verifiers
check instead of the local stack, and the one way they read from it.

These are read-only GETs, not load, so any host is allowed; each is bounded in time and in
size, follows a redirect only on the same scheme, host and port, and sends a token only when
the user named the environment variable holding it (never printed)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from scalectl.errors import CheckFailed, InputError

DEFAULT_TIMEOUT = 10.0  # seconds per request, the whole exchange
MAX_BYTES = 16 * 1024 * 1024  # a Prometheus answer or a /metrics page larger than this fails
MAX_REDIRECTS = 3
PROFILE = "production"  # the plan's profile a deployment elsewhere runs


@dataclass(frozen=True)
class Remote:
    """Where the deployment is (`target`, its public base URL) and its Prometheus, with the
    Authorization headers for each (from environment variables) and the health config."""

    target: str | None = None  # scheme://host[:port], no trailing slash
    prometheus: str | None = None
    target_headers: tuple[tuple[str, str], ...] = ()
    prometheus_headers: tuple[tuple[str, str], ...] = ()
    token_env: str | None = None  # the variable's name, for scalectl.health's own check
    health_config: Path | None = None
    timeout: float = DEFAULT_TIMEOUT
    max_bytes: int = MAX_BYTES

    def describe(self) -> dict[str, str | None]:
        """What identifies the deployment (for progress fingerprints): never the tokens."""
        return {"target": self.target, "prometheus": self.prometheus}


def _base_url(flag: str, text: str) -> str:
    """An http(s) URL of scheme, host and port only (no user info, path, query or fragment),
    without a trailing slash. Raises InputError naming the flag."""
    from scalectl.netguard import url_host

    try:
        url_host(text)
    except ValueError as exc:
        raise InputError(f"{flag} {text}: {exc}") from None
    parts = urlsplit(text)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        # The plan's routes and health paths, and Prometheus's /api/v1, are below the root.
        raise InputError(
            f"{flag} {text}: expected scheme://host[:port] only, without a path, ?query or "
            "#fragment"
        )
    return f"{parts.scheme}://{parts.netloc}"


def _token(flag: str, name: str, environ: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    from scalectl.health.headers import bearer

    try:
        return (bearer(name, environ),)
    except InputError as exc:
        raise InputError(exc.message.replace("--token-env", flag, 1)) from None


def remote_from_flags(
    *,
    target: str | None,
    prometheus: str | None,
    token_env: str | None,
    prometheus_token_env: str | None,
    health_config: Path | None,
    environ: Mapping[str, str],
) -> tuple[Remote | None, list[str]]:
    """The Remote the flags describe (None without --target and --prometheus) and every
    problem with them, one line each (the command reports them together, exit 2)."""
    problems: list[str] = []
    bases: dict[str, str | None] = {}
    for flag, text in (("--target", target), ("--prometheus", prometheus)):
        bases[flag] = None
        if text is not None:
            try:
                bases[flag] = _base_url(flag, text)
            except InputError as exc:
                problems.append(exc.message)
    headers: dict[str, tuple[tuple[str, str], ...]] = {"target": (), "prometheus": ()}
    for key, flag, name, needs in (
        ("target", "--token-env", token_env, target),
        ("prometheus", "--prometheus-token-env", prometheus_token_env, prometheus),
    ):
        if name is None:
            continue
        if needs is None:
            wanted = "--target" if key == "target" else "--prometheus"
            problems.append(f"{flag} {name}: only with {wanted}")
            continue
        try:
            headers[key] = _token(flag, name, environ)
        except InputError as exc:
            problems.append(exc.message)
    if health_config is not None:
        if target is None:
            problems.append(f"--health-config {health_config}: only with --target")
        elif not health_config.is_file():
            problems.append(f"--health-config {health_config}: no such file")
    if target is None and prometheus is None:
        return None, problems
    remote = Remote(
        target=bases["--target"],
        prometheus=bases["--prometheus"],
        target_headers=headers["target"],
        prometheus_headers=headers["prometheus"],
        token_env=token_env,
        health_config=health_config,
    )
    return remote, problems


@dataclass(frozen=True)
class Fetched:
    """A bounded GET's answer: the final URL, its status, content type and body."""

    url: str
    status: int
    content_type: str
    body: bytes


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port


def fetch(
    url: str,
    headers: tuple[tuple[str, str], ...] = (),
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = MAX_BYTES,
) -> Fetched:
    """GET `url`: at most `timeout` seconds in all and `max_bytes` of body, redirects
    followed only on the same scheme, host and port (a token must not travel elsewhere).
    Raises CheckFailed with one line for anything else."""
    import httpx

    from scalectl.health.probe import unasked_encoding

    current = url
    deadline = time.monotonic() + timeout
    # trust_env=False: the URL the user named is what is checked, not a proxy.
    with httpx.Client(timeout=timeout, trust_env=False, follow_redirects=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            left = deadline - time.monotonic()
            if left <= 0:
                raise CheckFailed(f"{current}: no complete answer within {timeout:g}s")
            try:
                # Uncompressed: a compressed body is inflated before its size is checked.
                asked = {"Accept-Encoding": "identity", **dict(headers)}
                # Each hop gets what is left of the time, not the whole of it again.
                with client.stream("GET", current, headers=asked, timeout=left) as response:
                    if time.monotonic() > deadline:
                        raise CheckFailed(f"{current}: no complete answer within {timeout:g}s")
                    location = response.headers.get("location")
                    if response.is_redirect and location:
                        following = urljoin(current, location)
                        try:
                            elsewhere = _origin(following) != _origin(current)
                        except ValueError:  # a port that is not a number
                            elsewhere = True
                        if elsewhere:
                            raise CheckFailed(
                                f"{current} -> {response.status_code} redirects to another "
                                f"host ({urlsplit(following).hostname}): not followed"
                            )
                        current = following
                        continue
                    encoding = unasked_encoding(response.headers, asked)
                    if encoding:
                        raise CheckFailed(
                            f"{current}: the answer is compressed ({encoding}) though "
                            "identity was asked: not read"
                        )
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body += chunk
                        # httpx bounds each read; this bounds a body that trickles in.
                        if time.monotonic() > deadline:
                            raise CheckFailed(f"{current}: no complete answer within {timeout:g}s")
                        if len(body) > max_bytes:
                            raise CheckFailed(
                                f"{current}: the answer is larger than {max_bytes // 1024} KiB"
                            )
                    return Fetched(
                        current,
                        response.status_code,
                        response.headers.get("content-type", ""),
                        bytes(body),
                    )
            except httpx.HTTPError as exc:
                from scalectl.health.probe import describe

                raise CheckFailed(f"{current}: {describe(exc)}") from None
    raise CheckFailed(f"{url}: more than {MAX_REDIRECTS} redirects")


def api_data(fetched: Fetched, key: str | None) -> Any:
    """`data` (or `data[key]`, a list of objects) of a Prometheus HTTP API answer. Anything
    else (an HTML page from something that is not Prometheus, an error status, a changed
    API) is CheckFailed with one clear line, never an exception from deep inside."""
    import json

    url = fetched.url
    if fetched.status != 200:
        raise CheckFailed(f"{url} -> {fetched.status}: not the Prometheus API")
    try:
        body = json.loads(fetched.body)
    except ValueError:
        kind = fetched.content_type or "no content type"
        raise CheckFailed(f"{url}: not a Prometheus API answer (not JSON: {kind})") from None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(body, dict) or body.get("status") != "success" or not isinstance(data, dict):
        raise CheckFailed(f"{url}: not a Prometheus API answer (no status: success and data)")
    if key is None:
        return data
    items = data.get(key)
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise CheckFailed(f"{url}: not a Prometheus API answer (data.{key} is not a list)")
    return items


def prometheus_get(remote: Remote, path: str, key: str | None) -> Any:
    """`data` (or `data[key]`) of GET `path` on the remote Prometheus."""
    if remote.prometheus is None:
        raise CheckFailed("no Prometheus to ask: give --prometheus URL")
    fetched = fetch(
        remote.prometheus + path,
        remote.prometheus_headers,
        timeout=remote.timeout,
        max_bytes=remote.max_bytes,
    )
    return api_data(fetched, key)


def instant_query(remote: Remote, expr: str) -> list[tuple[dict[str, str], float]]:
    """An instant query's vector: (labels, value) per series. Raises CheckFailed when the
    answer is not a vector."""
    from urllib.parse import urlencode

    data = prometheus_get(remote, "/api/v1/query?" + urlencode({"query": expr}), None)
    result = data.get("result")
    if data.get("resultType") != "vector" or not isinstance(result, list):
        raise CheckFailed(f"{remote.prometheus}: the query did not return a vector")
    out = []
    for sample in result:
        metric = sample.get("metric") if isinstance(sample, dict) else None
        value = sample.get("value") if isinstance(sample, dict) else None
        if not isinstance(metric, dict) or not isinstance(value, list) or len(value) != 2:
            raise CheckFailed(f"{remote.prometheus}: a query answer holds a malformed sample")
        try:
            number = float(value[1])
        except (TypeError, ValueError):
            raise CheckFailed(f"{remote.prometheus}: a sample's value is not a number") from None
        out.append(({str(k): str(v) for k, v in metric.items()}, number))
    return out
