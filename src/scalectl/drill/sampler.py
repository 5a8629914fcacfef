"""Health probes during a drill: what an orchestrator or a balancer would have seen."""

from __future__ import annotations

import threading
import time

import httpx

from scalectl.drill.model import HealthSample
from scalectl.netguard import loopback_client

INTERVAL = 0.5  # seconds between rounds
# Per probe: slower counts as no answer. The readiness probe scalectl renders for
# Kubernetes has timeoutSeconds 2 (templates/kubernetes/service.yaml.j2).
TIMEOUT = 2.0


class HealthSampler:
    """Probes each URL every INTERVAL in a daemon thread until stopped (or `max_seconds`
    have passed), keeping every answer in `samples`."""

    def __init__(self, urls: list[str], max_seconds: float = 3600) -> None:
        self.urls = urls
        self.deadline = time.monotonic() + max_seconds
        self.samples: list[HealthSample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drill-probe", daemon=True)

    def start(self) -> None:
        """Start probing in the background (nothing to do without URLs)."""
        if self.urls:
            self._thread.start()

    def stop(self) -> None:
        """Stop probing and wait (bounded) for the round in progress to end."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(TIMEOUT * len(self.urls) + INTERVAL + 1)

    def _run(self) -> None:
        with loopback_client(TIMEOUT) as client:
            while not self._stop.is_set() and time.monotonic() < self.deadline:
                for url in self.urls:
                    self.samples.append(sample_health(client, url))
                self._stop.wait(INTERVAL)


def sample_health(client: httpx.Client, url: str) -> HealthSample:
    """One health probe of `url`: its status and health+json status, or the error's name
    when it did not answer in time. Raises nothing."""
    started = time.time()
    try:
        response = client.get(url, headers={"Accept": "application/health+json"})
    except httpx.HTTPError as exc:
        return HealthSample(
            started, url, None, None, (time.time() - started) * 1000, type(exc).__name__
        )
    health = None
    try:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("status"), str):
            health = body["status"]
    except ValueError:
        pass
    return HealthSample(started, url, response.status_code, health, (time.time() - started) * 1000)
