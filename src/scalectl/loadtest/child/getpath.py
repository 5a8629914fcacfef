"""The locustfile of `scalectl loadtest capacity` when none is given: every task is one GET
of SCALECTL_CAPACITY_PATH (default /), named after the path. Runs inside Locust only."""

import os

from locust import FastHttpUser, constant, task

PATH = os.environ.get("SCALECTL_CAPACITY_PATH", "/")


class GetPath(FastHttpUser):
    """One GET per task; the open model sets when tasks start."""

    wait_time = constant(0)

    @task
    def get(self) -> None:
        self.client.get(PATH, name=PATH)
