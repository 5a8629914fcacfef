"""Job pipeline: submit, then poll the analyse job until it is done.

Each iteration posts a document, follows its job (`GET /api/jobs/{id}`) every
SCALECTL_JOB_POLL_SECONDS for at most SCALECTL_JOB_MAX_POLLS polls, and reports the time
from the POST to a terminal status as a custom request "JOB analyse end-to-end". Exercises
the broker, the Dramatiq workers (queue priority, CPU-bound analysis, two transactions per
job) and the job cache (short TTL). `done` is a success; `dead` or still unfinished after
the last poll is a failure. `failed` is not terminal: the app shows it between retries.

Request names: POST /api/submissions, GET /api/jobs/{id}, JOB analyse end-to-end.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import common  # noqa: E402
from locust import FastHttpUser, between, task  # noqa: E402

MAX_POLLS = common.env_int("SCALECTL_JOB_MAX_POLLS", 60)
POLL_SECONDS = common.env_float("SCALECTL_JOB_POLL_SECONDS", 0.5)
WAIT_MIN = common.env_float("SCALECTL_WAIT_MIN", 0.5)
WAIT_MAX = common.env_float("SCALECTL_WAIT_MAX", 2.0, minimum=WAIT_MIN)


class JobNotFinished(Exception):
    pass


class JobDead(Exception):
    pass


class PipelineUser(FastHttpUser):
    """Submits a document and waits for its analysis."""

    wait_time = between(WAIT_MIN, WAIT_MAX)

    def on_start(self) -> None:
        self.rng = common.rng_for_user()
        self.key = common.take_key()
        self.headers = common.client_headers(self.key)
        self.user_id = self.key.user  # the app takes the owner from the key

    def _report(self, started: float, exception: Exception | None) -> None:
        self.environment.events.request.fire(
            request_type=common.JOB_E2E_TYPE,
            name=common.JOB_E2E_NAME,
            response_time=(time.perf_counter() - started) * 1000.0,
            response_length=0,
            exception=exception,
            # A job's time to completion, not a request: gated by its own name, kept out of
            # the aggregate of the requests (scalectl.loadtest.rawjson).
            context={"scalectl_aggregate": False},
        )

    @task
    def submit_and_wait(self) -> None:
        title, content = common.cv_text(self.rng)
        body = {
            "user_id": self.user_id,
            "title": title,
            "content": content,
            "priority": common.priority(self.rng),
        }
        started = time.perf_counter()
        with self.client.post(
            common.SUBMISSIONS,
            json=body,
            headers=self.headers,
            name=common.SUBMISSIONS,
            catch_response=True,
        ) as resp:
            if resp.status_code != 202:
                resp.failure(f"expected 202, got {resp.status_code}")
                return
            job_id = resp.json()["job_id"]
        status = "queued"
        for _ in range(MAX_POLLS):  # bounded
            time.sleep(POLL_SECONDS)  # gevent-patched inside Locust: yields to other users
            with self.client.get(
                f"/api/jobs/{job_id}", headers=self.headers, name=common.JOB, catch_response=True
            ) as resp:
                if resp.status_code != 200:
                    resp.failure(f"expected 200, got {resp.status_code}")
                    continue
                status = resp.json().get("status", "?")
            if status == "done":
                self._report(started, None)
                return
            if status == "dead":
                self._report(started, JobDead(f"job {job_id} is dead"))
                return
        self._report(
            started,
            JobNotFinished(f"job not done after {MAX_POLLS} polls (last status {status})"),
        )
