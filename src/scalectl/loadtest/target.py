"""Where a load test may send its traffic: checked before Locust starts."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from scalectl.errors import InputError


def check_host(host: str, allowed: tuple[str, ...]) -> tuple[str, int]:
    """Check that load may go to `host`: only loopback (scalectl.netguard), or a host the
    user named with --allow-host; and it must answer. Returns (host name, port); raises
    InputError otherwise."""
    from scalectl.netguard import url_host, url_problem

    try:
        name = url_host(host)
    except ValueError as exc:
        raise InputError(f"--host {host}: {exc}") from None
    problem = url_problem(host, allowed)
    if problem:
        raise InputError(
            f"--host {host}: {problem}; load tests send traffic only where you allow it: "
            f"add --allow-host {name}"
        )
    parts = urlsplit(host)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((name, port), timeout=2):
            pass
    except OSError as exc:
        raise InputError(f"--host {host}: cannot connect ({exc.strerror or exc})") from None
    return name, port
