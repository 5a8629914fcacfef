"""What one probe (HTTP, TCP, TLS or DNS) saw, as conditions read it."""

from __future__ import annotations

import json
from functools import cached_property
from typing import Any

from scalectl import exposition


class Observation:
    """One response (or the lack of one). Bodies are parsed (JSON, exposition) once, on
    first use. `previous` is an earlier scrape of the same URL, for rate() and increase();
    `taken_at` (time.monotonic() when the request was sent) measures the window.
    `certificate_ms` is the time left until the TLS leaf certificate's notAfter (None:
    not read, `certificate_error` says why); `dns_rcode` the outcome of a DNS probe."""

    def __init__(
        self,
        *,
        connected: bool,
        status: int = 0,
        elapsed_ms: float = 0.0,
        body: bytes = b"",
        content_type: str = "",
        error: str = "",
        taken_at: float = 0.0,
        previous: Observation | None = None,
        certificate_ms: float | None = None,
        certificate_error: str = "",
        dns_rcode: str | None = None,
    ) -> None:
        self.connected = connected
        self.status = status
        self.elapsed_ms = elapsed_ms
        self.body = body
        self.content_type = content_type
        self.error = error
        self.taken_at = taken_at
        self.previous = previous
        self.certificate_ms = certificate_ms
        self.certificate_error = certificate_error
        self.dns_rcode = dns_rcode

    @cached_property
    def text(self) -> str:
        """The body as text (undecodable bytes replaced)."""
        return self.body.decode("utf-8", errors="replace")

    @cached_property
    def json(self) -> tuple[bool, Any]:
        """(True, the parsed body) when the body is JSON, else (False, None)."""
        try:
            return True, json.loads(self.body)
        except ValueError:
            return False, None

    @cached_property
    def metrics(self) -> exposition.Exposition | str:
        """The parsed exposition, or why the body is not one."""
        try:
            return exposition.parse(self.text)
        except exposition.ExpositionError as exc:
            return f"the body is not the Prometheus text format ({exc})"
