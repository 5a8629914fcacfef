"""A worker's own `command` and per-queue `concurrency` (issue 14, "A worker command (any
program) and per-queue concurrency"): rendered as argv into Compose and Kubernetes, the
concurrency handed to the program in its environment and used by sizing, the default
Dramatiq worker unchanged, and what the default command cannot run refused. A custom
command is scraped, probed and alerted on only through the plan's `metrics`."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from scalectl.errors import InputError
from scalectl.files import write_tree
from scalectl.plan import prepare, render_files
from scalectl.plan.validate import run_checks
from scalectl.stack import run
from tests.conftest import Result, fixture_path
from tests.helpers.input_files import problems

MINIMAL = fixture_path("plans", "minimal.yaml").read_text()
CELERY = ["celery", "-A", "proj", "worker", "-Q", "emails", "--concurrency", "4"]


def plan_text(worker: str = "", emails: str = "", reports: str = "") -> str:
    """MINIMAL with a worker `mail` of two queues; the arguments are extra lines for the
    worker and for each queue."""
    return MINIMAL + (
        "workers:\n"
        "  mail:\n"
        "    image: registry.example.com/mail:1.0.0\n"
        "    replicas: {min: 1, max: 20}\n"
        "    resources:\n"
        '      requests: {cpu: "1", memory: 1Gi}\n'
        '      limits: {cpu: "1", memory: 1Gi}\n'
        f"{worker}"
        "    queues:\n"
        "      - name: emails\n"
        "        arrival_rate: 10\n"
        "        mean_duration_seconds: 1\n"
        "        target_wait_seconds: 5\n"
        f"{emails}"
        "      - name: pdf-reports\n"
        "        arrival_rate: 1\n"
        "        mean_duration_seconds: 4\n"
        "        target_wait_seconds: 30\n"
        f"{reports}"
    )


def flow(argv: list[str]) -> str:
    """A `command:` line for the worker (JSON strings are YAML flow scalars)."""
    return f"    command: [{', '.join(json.dumps(a) for a in argv)}]\n"


CUSTOM = plan_text(flow(CELERY), "        concurrency: 4\n", "        concurrency: 2\n")


def render(tmp_path: Path, text: str, profile: str = "production") -> dict[str, bytes]:
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    return render_files(prepare(path, profile))


def compose_worker(files: dict[str, bytes]) -> dict[str, Any]:
    return dict(yaml.safe_load(files["compose/docker-compose.yaml"])["services"]["mail"])


def k8s_docs(files: dict[str, bytes]) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(files["kubernetes/mail.yaml"]) if d]


def pod_annotations(files: dict[str, bytes]) -> dict[str, str]:
    [deployment] = [d for d in k8s_docs(files) if d["kind"] == "Deployment"]
    return dict(deployment["spec"]["template"]["metadata"].get("annotations", {}))


def k8s_container(files: dict[str, bytes]) -> dict[str, Any]:
    [deployment] = [d for d in k8s_docs(files) if d["kind"] == "Deployment"]
    [only] = deployment["spec"]["template"]["spec"]["containers"]
    return dict(only)


def test_a_celery_command_renders_as_argv_with_its_concurrency(tmp_path: Path) -> None:
    files = render(tmp_path, CUSTOM)
    service = compose_worker(files)
    assert service["command"] == CELERY
    assert service["environment"]["WORKER_CONCURRENCY"] == "6"
    assert service["environment"]["WORKER_CONCURRENCY_EMAILS"] == "4"
    assert service["environment"]["WORKER_CONCURRENCY_PDF_REPORTS"] == "2"

    found = k8s_container(files)
    assert found["command"] == CELERY
    assert "args" not in found
    env = {v["name"]: v.get("value") for v in found["env"]}
    assert env["WORKER_CONCURRENCY"] == "6"
    assert (env["WORKER_CONCURRENCY_EMAILS"], env["WORKER_CONCURRENCY_PDF_REPORTS"]) == ("4", "2")


def test_sizing_uses_each_queues_concurrency(tmp_path: Path) -> None:
    """Replicas are the most any queue needs at its own concurrency, not the consumers
    summed over a shared pool."""
    path = tmp_path / "plan.yaml"
    path.write_text(CUSTOM)
    sizing = prepare(path, "production").sizing
    worker = sizing.worker("mail")
    per_queue = {q.queue: q.consumers for q in sizing.queues if q.worker == "mail"}
    assert worker.consumers_per_replica == 6
    expected = max(-(-per_queue["emails"] // 4), -(-per_queue["pdf-reports"] // 2))
    assert worker.required_replicas == expected
    assert worker.replicas == max(expected, 1)


def test_a_custom_command_passes_the_validators(tmp_path: Path) -> None:
    files = render(tmp_path, CUSTOM)
    root = tmp_path / "out"
    write_tree(root, files)
    results = run_checks(root, "1.30.0", {**os.environ, "CI": "true"})
    checked = {
        r.target: r for r in results if r.tool in ("kubernetes-validate", "compose-spec schema")
    }
    assert str(root / "kubernetes" / "mail.yaml") in checked
    assert any(t.endswith("docker-compose.yaml") for t in checked)
    bad = [f"{r.tool} {r.target}: {r.detail}" for r in checked.values() if r.status != "ok"]
    assert not bad, "\n".join(bad)


HOSTILE_ARGV = [
    "sh",
    "-c",
    '"; rm -rf / #',
    "${HOME} $(whoami) $$ $$(id)",
    "a: b, [c] {d} # e",
    "'--x'",
]


def test_a_hostile_argv_stays_one_argument_each(tmp_path: Path) -> None:
    """Quotes, YAML flow characters, comments and every `$` form come back byte for byte:
    Compose unescapes "$$" once, Kubernetes expands $(VAR) and turns "$$" into "$"."""
    files = render(tmp_path, plan_text(flow(HOSTILE_ARGV)))
    rendered = compose_worker(files)["command"]
    assert [a.replace("$$", "$") for a in rendered] == HOSTILE_ARGV
    assert all("$" not in a.replace("$$", "") for a in rendered)  # every "$" escaped
    k8s = k8s_container(files)["command"]
    assert [a.replace("$$", "$") for a in k8s] == HOSTILE_ARGV
    assert all("$" not in a.replace("$$", "") for a in k8s)


@pytest.mark.parametrize(
    ("arg", "shown"),
    [("a\nb", "newline"), ("a\x00b", "NUL"), ("x" * 257, "long"), ("", "empty"), ("é", "accent")],
)
def test_argv_entries_are_printable_ascii_and_bounded(tmp_path: Path, arg: str, shown: str) -> None:
    found = problems(tmp_path, plan_text(f"    command: [celery, {json.dumps(arg)}]\n"))
    assert len(found) == 1, (shown, found)
    assert " workers.mail.command[1]: must be 1 to 256 printable ASCII characters" in found[0]


def test_argv_is_a_list_of_at_most_64_entries(tmp_path: Path) -> None:
    too_long = problems(tmp_path, plan_text(flow(["x"] * 65)))
    assert len(too_long) == 1 and "workers.mail.command: " in too_long[0]
    shell_string = problems(tmp_path, plan_text("    command: celery -A proj worker\n"))
    assert len(shell_string) == 1 and "workers.mail.command: " in shell_string[0]


def test_the_default_command_cannot_take_a_per_queue_concurrency(tmp_path: Path) -> None:
    found = problems(tmp_path, plan_text(emails="        concurrency: 4\n"))
    assert len(found) == 1
    assert " workers.mail.queues[0].concurrency: needs the worker's `command`" in found[0]


def test_a_custom_command_sets_concurrency_on_every_queue_or_none(tmp_path: Path) -> None:
    found = problems(tmp_path, plan_text(flow(CELERY), emails="        concurrency: 4\n"))
    assert len(found) == 1
    assert " workers.mail.queues[1]: concurrency: set it on every queue" in found[0]


def test_the_default_worker_is_the_dramatiq_command(tmp_path: Path) -> None:
    files = render(tmp_path, plan_text())
    service = compose_worker(files)
    assert service["command"][:2] == ["dramatiq", "refapp.tasks"]
    assert service["command"][-3:] == ["--queues", "emails", "pdf-reports"]
    assert "WORKER_CONCURRENCY" not in service["environment"]
    container = k8s_container(files)
    assert container["command"] == ["dramatiq"]
    assert container["args"][0] == "refapp.tasks"


def test_stack_up_refuses_a_custom_command_before_starting_anything(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(CUSTOM)
    state = tmp_path / "state"
    with pytest.raises(InputError) as exc:
        run.up(path, "local", state)
    assert "workers.mail.command: `stack` runs only the reference app's" in exc.value.message
    assert not state.exists()


# --- what Prometheus, the probes and the dashboard see of a custom command ---------------

Cli = Callable[..., Result]
METRICS = "    metrics: {port: 9400, path: /stats}\n"
QUEUE_GAUGES = "    metrics: {port: 9400, path: /stats, queue_gauges: true}\n"


def with_worker(extra: str) -> str:
    """CUSTOM with `extra` lines added to the worker (its metrics), feasible for `scalectl
    plan`: the worker uses no database and the web tier's pools fit the primary."""
    worker = flow(CELERY) + "    db_time_fraction: 0\n" + extra
    text = plan_text(worker, "        concurrency: 4\n", "        concurrency: 2\n")
    return text.replace("pool: {min: 1, max: 5}", "pool: {min: 1, max: 4}")


def scrape_jobs(files: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    config = yaml.safe_load(files["prometheus/prometheus.yml"])
    return {job["job_name"]: job for job in config["scrape_configs"]}


def alert_rules(files: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    groups = yaml.safe_load(files["prometheus/alerts.rules.yml"])["groups"]
    return {r["alert"]: r for g in groups for r in g["rules"]}


def promtool_cases(files: dict[str, bytes]) -> set[str]:
    tests = yaml.safe_load(files["prometheus/rules.test.yml"])["tests"]
    return {case["alertname"] for t in tests for case in t["alert_rule_test"]}


def dashboard_exprs(files: dict[str, bytes]) -> str:
    panels = json.loads(files["grafana/dashboard.json"])["panels"]
    return " ".join(t["expr"] for p in panels for t in p.get("targets", []))


PROBES = ("startupProbe", "readinessProbe", "livenessProbe")


def test_a_celery_worker_without_metrics_is_not_scraped_probed_or_alerted(
    tmp_path: Path,
) -> None:
    """Nothing assumes Dramatiq's exporter on 9191: no scrape job, no Down or queue alert
    (nor their promtool cases), no metrics port or probe, no healthcheck against it, no
    Dramatiq exporter settings and no empty queue panels."""
    files = render(tmp_path, CUSTOM)
    assert "mail" not in scrape_jobs(files)
    assert "api" in scrape_jobs(files)
    rules = alert_rules(files)
    assert not [name for name in rules if name.startswith("Mail")]
    assert not [r for r in rules.values() if r["labels"]["service"] == "mail"]
    assert not [name for name in promtool_cases(files) if name.startswith("Mail")]
    assert "queue_depth" not in dashboard_exprs(files)

    container = k8s_container(files)
    assert "ports" not in container
    assert not [p for p in PROBES if p in container]
    assert pod_annotations(files) == {}  # nothing for a pod-discovering Prometheus either
    env = {v["name"] for v in container["env"]}
    assert not {"dramatiq_prom_db", "dramatiq_prom_port"} & env

    service = compose_worker(files)
    assert service["healthcheck"] == {"disable": True}
    assert not {"dramatiq_prom_db", "dramatiq_prom_port"} & set(service["environment"])

    # The same worker without its command is Dramatiq, with its exporter on 9191.
    default = render(tmp_path, plan_text())
    assert scrape_jobs(default)["mail"]["dns_sd_configs"][0]["port"] == 9191
    assert {"MailDown", "MailQueueDepthHigh"} <= set(alert_rules(default))
    assert "queue_depth" in dashboard_exprs(default)
    container = k8s_container(default)
    assert container["ports"][0]["containerPort"] == 9191
    assert pod_annotations(default)["prometheus.io/port"] == "9191"
    assert container["livenessProbe"]["httpGet"]["path"] == "/metrics"
    assert "dramatiq_prom_port" in {v["name"] for v in container["env"]}
    assert "test" in compose_worker(default)["healthcheck"]


def test_a_celery_worker_with_metrics_is_scraped_probed_and_alerted_there(
    tmp_path: Path,
) -> None:
    files = render(tmp_path, with_worker(METRICS))
    job = scrape_jobs(files)["mail"]
    assert job["metrics_path"] == "/stats"
    assert job["dns_sd_configs"] == [{"names": ["mail"], "type": "A", "port": 9400}]
    rules = alert_rules(files)
    assert rules["MailDown"]["expr"] == 'absent(up{job="mail"} == 1)'
    assert "MailDown" in promtool_cases(files)
    # Its queue gauges have no known source: still no queue alert or panel.
    assert not [n for n in rules if n.startswith("Mail") and n != "MailDown"]
    assert "queue_depth" not in dashboard_exprs(files)

    container = k8s_container(files)
    assert container["ports"] == [{"name": "metrics", "containerPort": 9400, "protocol": "TCP"}]
    # On Kubernetes, a Prometheus that discovers pods scrapes the same port and path.
    assert pod_annotations(files) == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "9400",
        "prometheus.io/path": "/stats",
    }
    for probe in PROBES:
        assert container[probe]["httpGet"] == {"path": "/stats", "port": "metrics"}

    local = scrape_jobs(render(tmp_path, with_worker(METRICS), "local"))["mail"]
    assert local["static_configs"] == [{"targets": ["127.0.0.1:9400"]}]


def test_queue_gauges_bring_back_the_queue_alerts_and_panels(tmp_path: Path) -> None:
    files = render(tmp_path, with_worker(QUEUE_GAUGES))
    rules = alert_rules(files)
    for alert in ("QueueDepthHigh", "QueueJobTooOld", "DeadLettersIncreasing"):
        assert "Mail" + alert in rules
        assert "Mail" + alert in promtool_cases(files)
    assert 'queue_depth{queue=~"emails|pdf-reports"}' in dashboard_exprs(files)


@pytest.mark.parametrize(
    ("extra", "scraped", "queue_alerts"),
    [("", False, False), (METRICS, True, False), (QUEUE_GAUGES, True, True)],
    ids=["none", "metrics", "gauges"],
)
def test_plan_check_passes_on_a_custom_worker(
    cli: Cli, tmp_path: Path, extra: str, scraped: bool, queue_alerts: bool
) -> None:
    """promtool (config, rules and the rendered rule tests), amtool, nginx, gixy,
    kubernetes-validate and the compose schema all accept each shape, none skipped, and
    what they checked scrapes and alerts on the worker only as far as the plan says."""
    path = tmp_path / "plan.yaml"
    path.write_text(with_worker(extra))
    out = tmp_path / "out"
    result = cli("plan", path, "-o", out, "--check", "--json", env={"CI": "true"})
    checks = json.loads(result.stdout)["results"][0]["checks"]
    assert result.code == 0, [c for c in checks if c["status"] != "ok"]
    assert {c["tool"] for c in checks} >= {
        "promtool test rules",
        "promtool check config",
        "kubernetes-validate",
        "compose-spec schema",
    }
    files = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert ("mail" in scrape_jobs(files)) is scraped
    assert ("MailDown" in promtool_cases(files)) is scraped
    assert ("MailQueueDepthHigh" in promtool_cases(files)) is queue_alerts
    assert ("ports" in k8s_container(files)) is scraped


def test_metrics_needs_a_command(tmp_path: Path) -> None:
    found = problems(tmp_path, plan_text(METRICS))
    assert len(found) == 1
    assert " workers.mail.metrics: needs the worker's `command`" in found[0]


@pytest.mark.parametrize(
    ("metrics", "field"),
    [
        ('{port: 9400, path: "/x\\n  - y"}', "workers.mail.metrics.path"),
        ("{port: 9400, path: stats}", "workers.mail.metrics.path"),
        ('{port: 9400, path: "/a b"}', "workers.mail.metrics.path"),
        (f'{{port: 9400, path: "/{"x" * 128}"}}', "workers.mail.metrics.path"),
        ("{port: 0}", "workers.mail.metrics.port"),
        ("{path: /metrics}", "workers.mail.metrics.port"),
        ("{port: 9400, scheme: https}", "workers.mail.metrics.scheme"),
    ],
)
def test_metrics_port_and_path_are_validated(tmp_path: Path, metrics: str, field: str) -> None:
    found = problems(tmp_path, with_worker(f"    metrics: {metrics}\n"))
    assert len(found) == 1, found
    assert f" {field}: " in found[0]
