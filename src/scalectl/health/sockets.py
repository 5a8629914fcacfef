"""Probes below HTTP: `tcp://host:port` (a connect), `tls://host:port` (a handshake and the
leaf certificate's expiry) and `dns://name` (the system resolver), plus the certificate
expiry of an `https://` endpoint. Each returns an Observation, bounded by its time limit.

The stdlib resolver (getaddrinfo) cannot ask a chosen DNS server or return the server's
own rcode: NOERROR means the name resolved, NXDOMAIN that the resolver said it does not
exist (EAI_NONAME, EAI_NODATA), SERVFAIL anything else (docs/health.md "DNS").
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlsplit

from scalectl.duration import format_duration
from scalectl.health.conditions import Observation

SCHEMES = ("tcp", "tls", "dns")
_NO_SUCH_NAME = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}


def scheme_of(url: str) -> str:
    """The URL's scheme, lower case: http, https, tcp, tls or dns."""
    return url.split("://", 1)[0].lower()


async def observe(url: str, verify: bool | ssl.SSLContext, limit: float) -> Observation:
    """Probe a tcp://, tls:// or dns:// URL within `limit` seconds."""
    from scalectl.health.probe import describe  # probe imports this module

    parts = urlsplit(url)
    scheme, host = scheme_of(url), parts.hostname or ""
    taken_at = time.monotonic()
    started = time.perf_counter()
    timeout = max(limit, 0.05)

    def elapsed() -> float:
        return (time.perf_counter() - started) * 1000

    if scheme == "dns":
        return await _resolve(host, timeout, taken_at, elapsed)
    context = _context(verify) if scheme == "tls" else None
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(
                host, parts.port, ssl=context, server_hostname=host if context else None
            )
    except TimeoutError:
        error = f"no connection within {timeout:g}s"
        return Observation(connected=False, elapsed_ms=elapsed(), error=error, taken_at=taken_at)
    except (OSError, ssl.SSLError) as exc:
        return Observation(
            connected=False, elapsed_ms=elapsed(), error=describe(exc), taken_at=taken_at
        )
    ms = elapsed()
    obs = Observation(connected=True, elapsed_ms=ms, taken_at=taken_at)
    if context is not None:
        _read_certificate(obs, writer.get_extra_info("ssl_object"))
    else:
        obs.certificate_error = "a tcp:// probe has no certificate (use tls://)"
    writer.close()
    # Closing is best effort: a peer that never answers the close must not hold the probe.
    with contextlib.suppress(TimeoutError, OSError, ssl.SSLError):
        async with asyncio.timeout(max(0.05, timeout - ms / 1000)):
            await writer.wait_closed()
    return obs


def summary(url: str, obs: Observation) -> str | None:
    """A passing row's detail for a tcp://, tls:// or dns:// probe; None for HTTP."""
    scheme = scheme_of(url)
    if scheme == "dns":
        return f"{obs.dns_rcode}" + (f": {obs.text}" if obs.text else "")
    if scheme not in SCHEMES:
        return None
    if obs.certificate_ms is None:
        return "connected"
    left = format_duration(abs(obs.certificate_ms) / 1000)
    ended = obs.certificate_ms < 0
    return f"connected, certificate {'expired ' + left + ' ago' if ended else 'expires in ' + left}"


async def add_certificate(
    obs: Observation, url: str, verify: bool | ssl.SSLContext, limit: float
) -> None:
    """Read the certificate of an https:// URL (a TLS handshake of its own) into `obs`."""
    parts = urlsplit(url)
    tls = f"tls://{parts.hostname}:{parts.port or 443}"
    if ":" in (parts.hostname or ""):
        tls = f"tls://[{parts.hostname}]:{parts.port or 443}"
    seen = await observe(tls, verify, limit)
    obs.certificate_ms = seen.certificate_ms
    obs.certificate_error = seen.certificate_error or (
        "" if seen.connected else f"TLS handshake: {seen.error}"
    )


def _context(verify: bool | ssl.SSLContext) -> ssl.SSLContext:
    if isinstance(verify, ssl.SSLContext):
        return verify
    context = ssl.create_default_context()
    if not verify:  # --insecure / insecure: true: still read the certificate, trust it
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _read_certificate(obs: Observation, tls: ssl.SSLObject | None) -> None:
    der = tls.getpeercert(binary_form=True) if tls is not None else None
    if not der:
        obs.certificate_error = "the server sent no certificate"
        return
    try:
        expires = not_after(der)
    except ValueError as exc:
        obs.certificate_error = f"unreadable certificate ({exc})"
        return
    obs.certificate_ms = (expires - datetime.now(UTC)).total_seconds() * 1000


def not_after(der: bytes) -> datetime:
    """The notAfter of a DER certificate (RFC 5280 4.1.2.5). The stdlib reads it only from a
    verified peer; this reads it from the bytes, so an --insecure probe sees it too."""
    _, certificate, _ = _element(der, 0)
    _, at, _ = _element(der, certificate)  # tbsCertificate
    tag, _, end = _element(der, at)
    if tag == 0xA0:  # [0] version, present from v2 on
        at = end
    for _ in range(3):  # serialNumber, signature, issuer
        at = _element(der, at)[2]
    _, validity, _ = _element(der, at)
    tag, start, end = _element(der, _element(der, validity)[2])  # after notBefore
    text = der[start:end].decode("ascii", errors="replace")
    try:
        if tag == 0x17:  # UTCTime: YY of 50 or more is 19YY
            moment = datetime.strptime(text, "%y%m%d%H%M%SZ")
            if moment.year >= 2050:
                moment = moment.replace(year=moment.year - 100)
        elif tag == 0x18:
            moment = datetime.strptime(text, "%Y%m%d%H%M%SZ")
        else:
            raise ValueError(f"notAfter has tag {tag:#x}, not a time")
    except ValueError as exc:
        raise ValueError(f"notAfter '{text}': {exc}") from None
    return moment.replace(tzinfo=UTC)


def _element(der: bytes, at: int) -> tuple[int, int, int]:
    """(tag, start, end) of the DER element at `at`; ValueError when it is cut short."""
    if at + 2 > len(der):
        raise ValueError("truncated DER")
    tag, length = der[at], der[at + 1]
    at += 2
    if length & 0x80:
        size = length & 0x7F
        if not 0 < size <= 4 or at + size > len(der):
            raise ValueError("bad DER length")
        length = int.from_bytes(der[at : at + size], "big")
        at += size
    if at + length > len(der):
        raise ValueError("truncated DER")
    return tag, at, at + length


async def _resolve(
    name: str, timeout: float, taken_at: float, elapsed: Callable[[], float]
) -> Observation:
    """getaddrinfo in a daemon thread: a resolver that hangs past the time limit is left
    behind instead of holding the run (an executor thread would be joined at exit)."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[list[str] | socket.gaierror] = loop.create_future()

    def settle(value: list[str] | socket.gaierror) -> None:
        if not answer.done():
            answer.set_result(value)

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
            value: list[str] | socket.gaierror = sorted({str(i[4][0]) for i in infos})
        except socket.gaierror as exc:
            value = exc
        except (OSError, UnicodeError) as exc:
            value = socket.gaierror(socket.EAI_FAIL, str(exc))
        # The loop may have ended (the probe timed out and the run finished).
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, value)

    threading.Thread(target=lookup, name=f"dns {name}", daemon=True).start()
    try:
        async with asyncio.timeout(timeout):
            value = await answer
    except TimeoutError:
        error = f"no answer from the system resolver within {timeout:g}s"
        return Observation(connected=False, elapsed_ms=elapsed(), error=error, taken_at=taken_at)
    if isinstance(value, list):
        return Observation(
            connected=True,
            elapsed_ms=elapsed(),
            body=" ".join(value).encode(),
            taken_at=taken_at,
            dns_rcode="NOERROR",
        )
    if value.errno in _NO_SUCH_NAME:
        return Observation(
            connected=True,
            elapsed_ms=elapsed(),
            error=f"{name}: no such name",
            taken_at=taken_at,
            dns_rcode="NXDOMAIN",
        )
    error = f"{name}: {value.strerror or value}"
    return Observation(
        connected=False, elapsed_ms=elapsed(), error=error, taken_at=taken_at, dns_rcode="SERVFAIL"
    )
