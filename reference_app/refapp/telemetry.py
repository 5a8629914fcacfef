"""The outermost middleware: request ids, the access log line, and the HTTP metrics.

Requests are labelled by route template (`/api/submissions/{submission_id}`), never by raw
path, so the label set stays bounded; requests that match no route are "unmatched". The
route is resolved up front, because shedding and rate limiting answer before the router
runs and their responses must be counted under the right route too."""

from __future__ import annotations

import logging
import os
import re
import time
import uuid

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from refapp import clients
from refapp.logs import request_id
from refapp.metrics import HTTP_DURATION, HTTP_REQUESTS

log = logging.getLogger("refapp.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


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
    def __init__(self, app: ASGIApp, routes: list[BaseRoute], debug: bool = False) -> None:
        self.app = app
        self.routes = routes
        self.debug = debug
        self.pid = str(os.getpid())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = clients.header(scope, b"x-request-id")
        rid = given if given and _REQUEST_ID.match(given) else uuid.uuid4().hex
        token = request_id.set(rid)
        route = route_template(self.routes, scope)
        method = scope["method"]
        status = 500
        started = time.perf_counter()
        extra = [(b"x-request-id", rid.encode())]
        if self.debug:  # lets tests see which worker answered
            extra.append((b"x-served-by", str(os.getpid()).encode()))

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
            HTTP_REQUESTS.labels(route, method, str(status)).inc()
            HTTP_DURATION.labels(route, method).observe(elapsed)
            quiet = clients.is_exempt(scope["path"]) and status < 500
            log.log(
                logging.DEBUG if quiet else logging.INFO,
                "request",
                extra={
                    "route": route,
                    "method": method,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            request_id.reset(token)
