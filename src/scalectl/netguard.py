"""The one loopback check: where load, faults, probes of the stack and tokens may go.

A name is loopback only if every address it resolves to is: a prefix test on the text
passed `localhost.example.com` and `127.0.0.1.example.com` (issue 11, finding 6). Each
function returns why a host or URL is refused, or None, so callers raise their own error.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import httpx

RESOLVE_TIMEOUT = 3.0  # seconds; getaddrinfo has no timeout of its own

# What inet_aton accepts besides the dotted quad: 2130706433, 0x7f000001, 0177.1, 127.1.
# The check and the HTTP client could read such a form differently, so it is refused.
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]*))*$", re.IGNORECASE)
# A URL's authority: a plain name, an IPv4 address or a bracketed IPv6 one, and a port.
# Anything else (user info, a backslash, spaces) may be parsed differently by the client.
_AUTHORITY = re.compile(r"^(\[[0-9a-f:.]+\]|[a-z0-9._-]+)(:[0-9]{1,5})?$", re.IGNORECASE)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    # ::ffff:a.b.c.d reaches a.b.c.d (Python 3.11's is_loopback does not look inside).
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def resolve(host: str, timeout: float = RESOLVE_TIMEOUT) -> list[str]:
    """Every address `host` resolves to; OSError when it does not resolve in time. A
    literal address needs no lookup."""
    if _address(host) is not None:
        return [host]
    found: list[str] = []
    failure: list[OSError] = []

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
            found.extend(str(info[4][0]) for info in infos)
        except OSError as exc:
            failure.append(exc)

    # A daemon thread: a lookup stuck on an unreachable DNS server is abandoned, not awaited.
    thread = threading.Thread(target=lookup, name=f"resolve {host}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise OSError(f"no answer within {timeout:g}s")
    if failure:
        raise OSError(failure[0].strerror or str(failure[0]))
    if not found:
        raise OSError("no address")
    return sorted(set(found))


def host_problem(host: str, timeout: float = RESOLVE_TIMEOUT) -> str | None:
    """Why `host` (a name or an address, IPv6 with or without brackets) is not loopback,
    or None when every address it resolves to is."""
    name = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not name:
        return "no host"
    if _address(name) is None and _NUMERIC_HOST.match(name):
        return f"{name} is not a loopback address: write an address as 127.0.0.1 or [::1]"
    try:
        addresses = resolve(name, timeout)
    except OSError as exc:
        return f"{name} is not a loopback address: it does not resolve ({exc})"
    foreign = [a for a in addresses if not _is_loopback(a)]
    if foreign and _address(name) is not None:
        return f"{name} is not a loopback address (127.0.0.0/8 or ::1)"
    if foreign:
        return f"{name} is not a loopback address: it resolves to {', '.join(foreign)}"
    return None


def _is_loopback(text: str) -> bool:
    address = _address(text)
    return address is not None and address.is_loopback


def url_host(url: str) -> str:
    """The host of an http(s) URL, lower-cased and without brackets; ValueError when the
    URL has no host, is not http(s), or has an authority clients may read differently
    (user info, backslashes)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise ValueError(f"not a URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected a URL such as http://127.0.0.1:8080")
    if not _AUTHORITY.match(parts.netloc):
        raise ValueError(
            f"'{parts.netloc}' is not a plain host[:port] (user info and escapes are refused)"
        )
    return parts.hostname


def url_problem(
    url: str, allowed: Iterable[str] = (), timeout: float = RESOLVE_TIMEOUT
) -> str | None:
    """Why `url` may not be sent to: its host is neither loopback nor exactly one of
    `allowed` (as given to --allow-host). None when it may."""
    try:
        host = url_host(url)
    except ValueError as exc:
        return str(exc)
    if host in {a.strip("[]").lower() for a in allowed}:
        return None
    return host_problem(host, timeout)


def state_url_problem(url: str, timeout: float = RESOLVE_TIMEOUT) -> str | None:
    """Like url_problem for the stack's own URLs, whatever their scheme (http://,
    postgresql://, redis://): each must point at this machine."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:
        return f"not a URL ({exc})"
    if not host:
        return "no host"
    # The stack writes no user info for http URLs (a postgresql:// URL names its user).
    if parts.scheme in ("http", "https") and not _AUTHORITY.match(parts.netloc):
        return f"'{parts.netloc}' is not a plain host[:port]"
    return host_problem(host, timeout)


def loopback_client(timeout: float, **options: Any) -> httpx.Client:
    """An HTTP client for loopback addresses (the stack's, a probe's). trust_env=False:
    an HTTP_PROXY meant for the internet must not carry (or refuse) requests to 127.0.0.1."""
    import httpx

    return httpx.Client(timeout=timeout, trust_env=False, **options)
