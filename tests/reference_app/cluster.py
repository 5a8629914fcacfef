"""Start and stop a gunicorn cluster of the reference app for tests, and read its metrics."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families
from refapp import keys

from scalectl.stack.process import free_port

APP_DIR = Path(__file__).resolve().parents[2] / "reference_app"
DEFAULT_USER = 11  # the owner behind Cluster.auth()'s default key
GUNICORN = Path(sys.executable).parent / "gunicorn"  # the test venv's


def run_driver(script: str, *args: str, timeout: float = 60) -> str:
    """The stdout of `script` run by Python in a child process beside refapp, with a
    metrics directory of its own: refapp's metrics need it before import, as under
    gunicorn. Fails the test, with the child's stderr, when the script fails."""
    with tempfile.TemporaryDirectory() as metrics:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": metrics}
        done = subprocess.run(
            [sys.executable, "-c", script, *args],
            cwd=APP_DIR, env=env, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


@dataclass
class Cluster:
    env: dict[str, str]
    log: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    members: list[psutil.Process] = field(default_factory=list)
    _default_key: str | None = None

    def mint(self, user: int | None = None, tier: str = "premium") -> tuple[str, int]:
        """A new API key (and its user: a fresh one unless given) in this cluster's
        database, minted the way `python -m refapp.keys create` does."""
        owner = user if user is not None else uuid.uuid4().int % 10**12 + 1
        (minted,) = keys.create(self.env["DATABASE_URL"], owner, [tier], 1)
        return minted.key, owner

    def auth(self, user: int | None = None, tier: str = "premium") -> dict[str, str]:
        """Authorization headers: a key of its own for `user`/`tier` when given, else
        the cluster's default key (premium, one user for the whole cluster)."""
        if user is None and tier == "premium":
            if self._default_key is None:
                self._default_key = self.mint(DEFAULT_USER)[0]
            return {"Authorization": f"Bearer {self._default_key}"}
        return {"Authorization": f"Bearer {self.mint(user, tier)[0]}"}

    def client(self, user: int | None = None, tier: str = "premium") -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.auth(user, tier), timeout=10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Cluster:
        env = {
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "PROMETHEUS_MULTIPROC_DIR": "",
            **self.env,
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR") if not env["PROMETHEUS_MULTIPROC_DIR"] else None
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [str(GUNICORN), "-c", "gunicorn.conf.py", "refapp.main:app"],
                cwd=APP_DIR,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: teardown can reap everything
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited {self.proc.returncode}:\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/health/ready", timeout=2).status_code == 200:
                    self.members = self._members()
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"cluster not ready in {timeout}s:\n{self.tail()}")

    def _members(self) -> list[psutil.Process]:
        assert self.proc is not None
        master = psutil.Process(self.proc.pid)
        return [master, *master.children(recursive=True)]

    def worker_pids(self) -> set[int]:
        return {p.pid for p in self._members()[1:]}

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM the master (graceful), then kill anything of ours still alive."""
        if self.proc is None:
            return None
        members = self.members or []
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        _, alive = psutil.wait_procs(members, timeout=5)
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        return self.proc.returncode

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of /metrics, keyed by (name, sorted labels)."""
        text = httpx.get(self.url + "/metrics", timeout=5).text
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def metric(self, name: str, **labels: str) -> float:
        """The sum of a metric's samples whose labels include `labels`."""
        return sum(
            value
            for (n, lbls), value in self.metrics().items()
            if n == name and set(labels.items()) <= set(lbls)
        )
