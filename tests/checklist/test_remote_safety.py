"""`checklist --target/--prometheus` without a stack: the flags are checked up front, local-stack
items are skipped (never passed), and every read of the deployment is bounded, stays on the
host it was sent to, and never shows the token. Real HTTP servers (tests/health/server.py)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from scalectl.checklist.export import status_word, to_markdown
from scalectl.checklist.progress import load_progress
from scalectl.checklist.remote import Remote
from scalectl.checklist.run import run_checklist
from scalectl.checklist.verifiers import Context
from scalectl.stack.process import free_port
from tests.checklist.conftest import check, checklist_file
from tests.conftest import ROOT, Result
from tests.health.server import METRICS, Answer, serve
from tests.helpers.servers import running

Cli = Callable[..., Result]
PLAN = ROOT / "examples" / "reference-app.yaml"
TOKEN = "s3cret-token-value"


def remote_context(**fields: object) -> Context:
    return Context(plan=PLAN, remote=Remote(**fields))


def test_bad_flags_are_reported_together_before_anything_runs(cli: Cli, tmp_path: Path) -> None:
    result = cli(
        "checklist", "post", "--target", "ftp://example.com", "--prometheus",
        "http://user:pw@example.com", "--token-env", "SCALECTL_TEST_UNSET",
        "--health-config", tmp_path / "missing.yaml", "--progress-dir", tmp_path,
    )  # fmt: skip
    assert result.code == 2
    assert result.stderr.splitlines() == [
        "error: 5 problems in the input",
        "--target ftp://example.com: expected a URL such as http://127.0.0.1:8080",
        "--prometheus http://user:pw@example.com: 'user:pw@example.com' is not a plain "
        "host[:port] (user info and escapes are refused)",
        "--token-env SCALECTL_TEST_UNSET: the variable is not set or empty",
        f"--health-config {tmp_path / 'missing.yaml'}: no such file",
        "--target: give --plan PLAN too (the deployment is checked against it)",
    ]
    assert not list(tmp_path.iterdir())
    path = cli("checklist", "post", "--plan", PLAN, "--prometheus", "http://example.com/prom")
    assert path.code == 2
    assert path.stderr == (
        "error: --prometheus http://example.com/prom: expected scheme://host[:port] only, "
        "without a path, ?query or #fragment\n"
    )


def test_items_that_need_the_local_stack_are_skipped(tmp_path: Path) -> None:
    ctx = remote_context(target=f"http://127.0.0.1:{free_port()}")
    for verify in (
        "{kind: backup-restore}",
        "{kind: graceful-shutdown}",
        "{kind: drill, name: overload}",
    ):
        result = check(verify, ctx)
        assert (result.status, result.evidence) == ("skipped", ("skipped: needs the local stack",))
        assert status_word(result) == "SKIPPED"
    # A drill's report is evidence that needs no stack: read as before.
    report = check(f"{{kind: drill, name: overload, run: false, report_dir: '{tmp_path}'}}", ctx)
    assert report.status == "fail"


def test_a_skipped_required_item_leaves_the_checklist_incomplete(tmp_path: Path) -> None:
    from scalectl.checklist import load_checklist

    path = checklist_file(
        tmp_path,
        """
        - {id: backup, title: Backup, verify: {kind: backup-restore}}
        - {id: drill, title: Drill, required: false, verify: {kind: drill, name: overload}}
        """,
    )
    ctx = remote_context(target=f"http://127.0.0.1:{free_port()}")
    result = run_checklist(load_checklist(str(path)), ctx, progress=tmp_path / "p.json")
    assert [i.status for i in result.items] == ["skipped", "skipped"]
    assert not result.ok and [i.id for i in result.required_failures] == ["backup"]
    assert status_word(result.items[1]) == "skipped (optional)"
    assert "❌ ⏭️ | **Backup**" in to_markdown(result)
    saved = load_progress(tmp_path / "p.json")
    assert saved["backup"].result.status == "skipped"
    # Never reused as a pass: the next run checks it again.
    again = run_checklist(load_checklist(str(path)), ctx, progress=tmp_path / "p.json")
    assert not again.items[0].reused


def test_slo_and_monitoring_without_prometheus_are_skipped() -> None:
    ctx = remote_context(target=f"http://127.0.0.1:{free_port()}")
    for verify in ("{kind: slo-live}", "{kind: prometheus}"):
        result = check(verify, ctx)
        assert result.status == "skipped"
        assert result.evidence == (
            "skipped: needs --prometheus URL (the deployment is read from its HTTP API)",
        )


def test_a_redirect_to_another_host_is_not_followed() -> None:
    with serve() as prometheus, serve() as elsewhere:
        port = elsewhere.base.rsplit(":", 1)[1]
        prometheus.answers["/-/ready"] = Answer(
            302, b"", "text/plain", {"Location": f"http://localhost:{port}/-/ready"}
        )
        ctx = remote_context(
            prometheus=prometheus.base, prometheus_headers=(("Authorization", f"Bearer {TOKEN}"),)
        )
        result = check("{kind: prometheus}", ctx)
    assert result.status == "fail"
    assert result.evidence == (
        f"{prometheus.base}/-/ready -> 302 redirects to another host (localhost): not followed",
    )
    assert prometheus.seen[0]["authorization"] == f"Bearer {TOKEN}"
    assert elsewhere.seen == []


def test_a_redirect_on_the_same_host_is_followed() -> None:
    with serve() as prometheus:
        prometheus.answers["/-/ready"] = Answer(302, b"", "text/plain", {"Location": "/ready"})
        prometheus.text("/ready", "Prometheus Server is Ready.\n")
        result = check("{kind: prometheus, wait: 0}", remote_context(prometheus=prometheus.base))
    assert result.status == "fail"
    # Past the readiness check: it is the targets API this server does not have.
    assert result.evidence == (
        f"{prometheus.base}/api/v1/targets?state=active -> 404: not the Prometheus API",
    )


def test_an_answer_larger_than_the_limit_fails() -> None:
    with serve() as target:
        target.text("/metrics", METRICS * 20)
        ctx = remote_context(target=target.base, max_bytes=1024)
        result = check("{kind: metrics-exposed}", ctx)
    assert result.status == "fail"
    assert f"{target.base}/metrics: the answer is larger than 1 KiB" in result.evidence


def test_health_goes_through_the_target_with_the_token_never_shown(
    cli: Cli, tmp_path: Path
) -> None:
    config = tmp_path / "health.yaml"
    config.write_text("version: 1\nendpoints:\n  - {name: live, path: /live}\n")
    with serve() as target:
        target.health("/live", "pass")
        result = cli(
            "checklist", "deploy", "--plan", PLAN, "--target", target.base,
            "--token-env", "SCALECTL_TEST_TOKEN", "--health-config", config,
            "--progress-dir", tmp_path, "--json",
            env={"SCALECTL_TEST_TOKEN": TOKEN},
        )  # fmt: skip
    items = {i["id"]: i for i in json.loads(result.stdout)["items"]}
    assert items["health-checks"]["status"] == "pass", items["health-checks"]
    assert items["health-checks"]["evidence"][0].startswith(
        f"{target.base.removeprefix('http://')} {target.base}/live: pass"
    )
    assert target.seen[0]["authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in result.stdout + result.stderr
    assert TOKEN not in "".join(p.read_text() for p in tmp_path.glob("*.json"))


def test_an_answer_that_trickles_in_is_cut_off_at_the_time_limit() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def trickle() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
            with contextlib.suppress(OSError):
                for _ in range(40):  # one byte every 0.1 s: each read is quick
                    conn.sendall(b"#")
                    time.sleep(0.1)

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    started = time.monotonic()
    ctx = remote_context(target=f"http://127.0.0.1:{port}")
    result = check("{kind: metrics-exposed, timeout: 1}", ctx)
    assert time.monotonic() - started < 3
    listener.close()
    assert result.status == "fail"
    assert f"http://127.0.0.1:{port}/metrics: no complete answer within 1s" in result.evidence


def test_a_compressed_answer_is_not_inflated() -> None:
    import gzip

    with serve() as target:
        target.answers["/metrics"] = Answer(
            200, gzip.compress(b"\0" * (16 * 2**20)), "text/plain", {"Content-Encoding": "gzip"}
        )
        result = check("{kind: metrics-exposed}", remote_context(target=target.base))
    assert result.status == "fail"
    assert any("compressed (gzip) though identity was asked" in e for e in result.evidence)


def test_redirect_hops_share_one_time_limit() -> None:
    # Each hop alone is within the limit; together they are not. Before, every hop got the
    # whole limit again.
    import http.server

    from scalectl.checklist.remote import fetch
    from scalectl.errors import CheckFailed

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(0.7)
            if self.path == "/a":
                self.send_response(302)
                self.send_header("Location", "/b")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(204)  # no body: the old check between chunks never ran
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with running(http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)) as port:
        base = f"http://127.0.0.1:{port}"
        assert fetch(f"{base}/b", timeout=1.0).status == 204  # one hop fits
        with pytest.raises(CheckFailed, match=r"no complete answer within 1s|timed out"):
            fetch(f"{base}/a", timeout=1.0)
