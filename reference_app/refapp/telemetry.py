"""The outermost middleware: request ids, the access log line, and the HTTP metrics.

Requests are labelled by route template (`/api/submissions/{submission_id}`), never by raw
path, so the label set stays bounded; requests that match no route are "unmatched". The
label is the route the router picked, or for a request it never saw (shedding and rate
limiting answer before it runs) the one it would have picked.

Access log: every error (status >= 400; health and metrics only at DEBUG) and every request
slower than ACCESS_LOG_SLOW_MS gets a line; of the other, fast successful ones, one in
ACCESS_LOG_EVERY does (1, the default: all). The metrics count every request whatever is
logged. (nginx logs every request it proxies, with the same request id.)"""

from __future__ import annotations

import logging
import os
import random
import re
import time

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from refapp import clients
from refapp.logs import AccessLog, request_id
from refapp.metrics import HTTP_DURATION, HTTP_REQUESTS, child
from refapp.settings import Settings

log = logging.getLogger("refapp.access")
access = AccessLog(log)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _new_request_id() -> str:
    # 128 random bits as 32 hex digits, like a uuid4's hex, without uuid4's system call per
    # request: an id need only be unique, and `random` is reseeded in each forked worker.
    return f"{random.getrandbits(128):032x}"


def route_template(routes: list[BaseRoute], scope: Scope) -> str:
    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return str(getattr(route, "path", "unmatched"))
        if match is Match.PARTIAL and partial is None:  # path matched, method did not (405)
            partial = str(getattr(route, "path", "unmatched"))
    return partial or "unmatched"


class TelemetryMiddleware:
    def __init__(self, app: ASGIApp, routes: list[BaseRoute], settings: Settings) -> None:
        self.app = app
        self.routes = routes
        self.debug = settings.debug
        self.log_every = settings.access_log_every
        self.slow = settings.access_log_slow_ms / 1000
        self.pid = str(os.getpid())
        self._seen = 0  # fast successful requests, for sampling the access log

    def _logged(self, exempt: bool, status: int, elapsed: float) -> bool:
        if exempt and status < 500:  # health and metrics: only at DEBUG
            return log.isEnabledFor(logging.DEBUG)
        if status >= 400 or elapsed >= self.slow:
            return True
        self._seen += 1
        return self._seen % self.log_every == 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = clients.header(scope, b"x-request-id")
        rid = given if given and _REQUEST_ID.match(given) else _new_request_id()
        token = request_id.set(rid)
        method = scope["method"]
        status = 500
        started = time.perf_counter()
        extra = [(b"x-request-id", rid.encode())]
        if self.debug:  # lets tests see which worker answered
            extra.append((b"x-served-by", self.pid.encode()))
        scope[clients.RESPONSE_HEADERS] = extra  # inner middlewares add theirs

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            # The router leaves the route it picked in the scope; matching again here is
            # for requests it never saw (shed, limited, refused) and for unmatched ones.
            matched = scope.get("route")
            route = (
                str(matched.path)
                if isinstance(matched, BaseRoute) and hasattr(matched, "path")
                else route_template(self.routes, scope)
            )
            child(HTTP_REQUESTS, route, method, str(status)).inc()
            child(HTTP_DURATION, route, method).observe(elapsed)
            exempt = clients.is_exempt(scope["path"])
            if self._logged(exempt, status, elapsed):
                access.write(
                    logging.DEBUG if exempt and status < 500 else logging.INFO,
                    route,
                    method,
                    status,
                    round(elapsed * 1000, 2),
                )
            request_id.reset(token)
