"""scalectl.stack.process against real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil

from scalectl.stack.process import stop

# A process started by another, short-lived one, as `scalectl stack up` starts the stack's.
ORPHAN = (
    "import subprocess, sys;"
    "p = subprocess.Popen(['sleep', '60'], start_new_session=True,"
    " stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL);"
    "print(p.pid)"
)


def test_stop_does_not_wait_for_the_init_process_to_reap() -> None:
    started = subprocess.run(
        [sys.executable, "-c", ORPHAN], capture_output=True, text=True, check=True, timeout=30
    )
    proc = psutil.Process(int(started.stdout))
    assert proc.ppid() != os.getpid()  # reparented (to PID 1 or a subreaper)
    begin = time.monotonic()
    assert stop(proc, timeout=10) is True
    took = time.monotonic() - begin
    # An exited process is stopped, reaped or not. Some inits reap only every 1-2 s, which
    # stop() used to wait for, once per member of the stack.
    assert took < 1.0, took
    assert not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
