"""What drills read from the stack's PostgreSQL afterwards: whether acknowledged writes are
there (postgres-outage) and how their jobs ended (queue-worker-kill)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from scalectl.drill.engine import DrillContext


def database_url(ctx: DrillContext) -> str:
    """The stack's PostgreSQL URL with its password (read from the stack's secrets)."""
    from scalectl.stack.credentials import authenticated_url
    from scalectl.stack.state import load

    state = load(ctx.state_dir) or ctx.state
    return authenticated_url(Path(state.state_dir), state.urls, "database")


def acknowledged(ctx: DrillContext) -> list[str]:
    """The ids of the submissions the load saw answered 202, sorted, without repeats."""
    try:
        text = ctx.acks_file.read_text()
    except FileNotFoundError:
        return []
    return sorted({line.strip() for line in text.splitlines() if line.strip()})


def lost_writes(ctx: DrillContext) -> tuple[int | None, int]:
    """(acknowledged submissions missing from PostgreSQL, acknowledged submissions); the
    first is None when nothing was acknowledged. Raises psycopg.Error when PostgreSQL
    cannot be read."""
    acked = acknowledged(ctx)
    if not acked:
        return None, 0
    import psycopg

    with psycopg.connect(database_url(ctx), connect_timeout=5) as conn:
        rows = conn.execute("SELECT id::text FROM submissions WHERE id::text = ANY(%s)", (acked,))
        present = {r[0] for r in rows}
    return len(set(acked) - present), len(acked)


def wait_running_job(ctx: DrillContext, timeout: float, *, several_for: float = 0.0) -> int:
    """Wait up to `timeout` s (or until the drill stops) for a job to be running; returns
    how many are, 0 when none was. For the first `several_for` s it waits for two or more:
    a job is short, and one seen alone may finish before a fault lands. Raises
    psycopg.Error when PostgreSQL cannot be read."""
    import psycopg

    started = time.monotonic()
    deadline = started + timeout
    with psycopg.connect(database_url(ctx), connect_timeout=5, autocommit=True) as conn:
        while time.monotonic() < deadline and not ctx.stopping.is_set():
            row = conn.execute("SELECT count(*) FROM jobs WHERE status = 'running'").fetchone()
            running = int(row[0]) if row else 0
            if running >= (2 if time.monotonic() - started < several_for else 1):
                return running
            time.sleep(0.05)
    return 0


@dataclass(frozen=True)
class JobCounts:
    """The jobs of the acknowledged submissions, by how they ended."""

    submissions: int  # acknowledged submissions
    queued: int
    running: int
    failed: int
    dead: int  # given up on
    duplicates: int  # completed more than once
    redelivered: int  # ran more than once (attempts > 1), completed once
    total: int
    seconds: float  # waited for them to settle

    @property
    def unfinished(self) -> int:
        """Jobs still queued, running or failed."""
        return self.queued + self.running + self.failed


_JOB_COUNTS = """
    SELECT count(*) FILTER (WHERE status = 'queued'),
           count(*) FILTER (WHERE status = 'running'),
           count(*) FILTER (WHERE status = 'failed'),
           count(*) FILTER (WHERE status = 'dead'),
           count(*) FILTER (WHERE completions > 1),
           count(*) FILTER (WHERE attempts > 1 AND status = 'done'),
           count(*)
      FROM jobs WHERE submission_id::text = ANY(%s) AND kind IN ('analyse', 'render')
"""


def settle_jobs(ctx: DrillContext, wait_s: float) -> JobCounts:
    """Wait (at most `wait_s`) until no job of an acknowledged submission is queued, running
    or failed; then count them by status. Raises psycopg.Error when PostgreSQL cannot be
    read."""
    import psycopg

    acked = acknowledged(ctx)
    started = time.monotonic()
    with psycopg.connect(database_url(ctx), connect_timeout=5, autocommit=True) as conn:
        while True:
            row = conn.execute(_JOB_COUNTS, (acked,)).fetchone()
            assert row is not None
            queued, running, failed, dead, duplicates, redelivered, total = (int(v) for v in row)
            waited = time.monotonic() - started
            if queued + running + failed == 0 or waited >= wait_s:
                break
            time.sleep(0.5)
    return JobCounts(
        submissions=len(acked),
        queued=queued,
        running=running,
        failed=failed,
        dead=dead,
        duplicates=duplicates,
        redelivered=redelivered,
        total=total,
        seconds=round(waited, 1),
    )
