"""Marking an instance `down` in the stack's nginx.conf (stack/balancer.py). The reload and
the lossless restarts it buys are tested against real nginx in tests/drill/test_drills.py."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from scalectl.plan.validate import which
from scalectl.stack.balancer import mark

CONF = """\
http {
    upstream api {
        least_conn;
        server 127.0.0.1:8001 max_fails=3 fail_timeout=10s;
        server 127.0.0.1:8002 max_fails=3 fail_timeout=10s;
        keepalive 32;
    }
    upstream admin {
        server 127.0.0.1:9001 max_fails=3 fail_timeout=10s;
    }
    server {
        listen 127.0.0.1:8080;
        location / { proxy_pass http://api; }
    }
}
"""


def test_marks_only_the_instance_and_back() -> None:
    down = mark(CONF, 8001, down=True)
    assert down is not None
    assert "server 127.0.0.1:8001 max_fails=3 fail_timeout=10s down;\n" in down
    assert "server 127.0.0.1:8002 max_fails=3 fail_timeout=10s;\n" in down
    assert mark(down, 8001, down=True) is None  # already out: nothing to reload
    assert mark(down, 8001, down=False) == CONF
    assert mark(CONF, 8001, down=False) is None


def test_never_takes_out_the_last_server_up() -> None:
    assert mark(CONF, 9001, down=True) is None
    down = mark(CONF, 8001, down=True)
    assert down is not None
    assert mark(down, 8002, down=True) is None
    assert mark(CONF, 7777, down=True) is None  # not in any upstream


def test_the_marked_configuration_is_valid_nginx(tmp_path: Path) -> None:
    nginx = which("nginx", os.environ)
    assert nginx is not None, "the tests need nginx on PATH"
    down = mark(CONF, 8002, down=True)
    assert down is not None
    (tmp_path / "logs").mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"pid {tmp_path}/nginx.pid;\nerror_log stderr;\nevents {{}}\n{down}")
    checked = subprocess.run(
        [nginx, "-t", "-p", f"{tmp_path}/", "-c", str(conf)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr
