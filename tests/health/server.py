"""A real HTTP server on a free loopback port whose answers the test sets: crafted
application/health+json bodies and /metrics expositions. It records request headers."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.helpers.servers import running


@dataclass
class Answer:
    status: int
    body: bytes
    content_type: str = "application/health+json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Routes:
    answers: dict[str, Answer] = field(default_factory=dict)
    seen: list[dict[str, str]] = field(default_factory=list)  # headers of each request
    base: str = ""

    def health(self, path: str, status: str, http: int = 200, **checks: Any) -> None:
        body = {"status": status, "version": "1", "releaseId": "r-42", "checks": checks}
        self.answers[path] = Answer(http, json.dumps(body).encode())

    def text(self, path: str, body: str, http: int = 200, content_type: str = "text/plain") -> None:
        self.answers[path] = Answer(http, body.encode(), content_type)


def component(status: str, value: Any = None, unit: str | None = None, **extra: Any) -> list[Any]:
    entry = {"componentType": "datastore", "observedValue": value, "observedUnit": unit}
    return [{**entry, "status": status, "time": "2025-01-01T00:00:00Z", **extra}]


METRICS = """# HELP http_requests_total HTTP requests answered
# TYPE http_requests_total counter
http_requests_total{method="GET",route="/api/stats",status="200"} 99.0
http_requests_total{method="GET",route="/api/stats",status="503"} 1.0
http_requests_total{method="GET",route="/health/ready",status="503"} 40.0
# HELP queue_depth Messages waiting
# TYPE queue_depth gauge
queue_depth{queue="analyse"} 7.0
queue_depth{queue="render"} 0.0
# HELP db_pool_requests_waiting Requests queued for a connection
# TYPE db_pool_requests_waiting gauge
db_pool_requests_waiting 0.0
"""


@contextmanager
def serve(tls: ssl.SSLContext | None = None) -> Iterator[Routes]:
    routes = Routes()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            routes.seen.append({k.lower(): v for k, v in self.headers.items()})
            answer = routes.answers.get(self.path, Answer(404, b"not found\n", "text/plain"))
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    with running(server, poll=0.05) as port:
        routes.base = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        yield routes
