"""The saturation signals of `loadtest capacity` leave a run's warm-up out, as its latency
and errors do: read from a real /metrics page whose counter moves only during the warm-up."""

from __future__ import annotations

import http.server
import time
from typing import Any

from scalectl.loadtest.capacityrun import _scraping
from scalectl.loadtest.saturation import Scraper
from tests.helpers.servers import running

SHED = {"total": 0}


class _Metrics(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = (
            "# TYPE load_shed_requests_total counter\n"
            f'load_shed_requests_total{{tier="free"}} {SHED["total"]}\n'
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


def test_a_warm_up_burst_is_not_read_as_saturation() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Metrics)
    with running(server) as port:
        scraper = Scraper(f"http://127.0.0.1:{port}/metrics")
        try:
            SHED["total"] = 0
            on_progress = _scraping(scraper, warmup_seconds=60)
            started = time.time()
            SHED["total"] = 500  # the users' first requests, all at once: some shed
            on_progress({"started_at": started})  # still warming up
            on_progress({"started_at": started - 61})  # the measured part begins
            time.sleep(0.05)
            on_progress({"started_at": started - 61})
            assert scraper.end().figures()["shedding"] == 0.0

            # Shedding while measured still counts.
            on_progress = _scraping(scraper, warmup_seconds=0)
            SHED["total"] += 50
            time.sleep(0.05)
            assert scraper.end().figures()["shedding"] > 0
        finally:
            scraper.close()
