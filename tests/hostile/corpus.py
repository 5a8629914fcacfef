"""The hostile-input corpus (issue 11, "Done means"): one row per bad input, run through the
real CLI by tests/hostile/test_corpus.py.

Print the table for the closing note (tried, exit 2, exit 1, crashes, by category):

    .venv/bin/python -m tests.hostile.table

Paths in argv, files and messages use placeholders: {d} the case's input directory, {out}
its --out (which must end up unchanged on refusal), {s} a sentinel directory outside both
(which must never change). `field` is the dotted field a `file:line:col` line must name.
Counted besides these rows (not duplicated here): tests/hostile/test_rendered_strings.py,
test_limits.py, test_output.py and test_loopback.py, listed in EXISTING.
"""

# One case a line: the table reads better than the 100-column limit would make it.
# ruff: noqa: E501
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import EXAMPLES, fixture_path

SMALL = (EXAMPLES / "small.yaml").read_text()
MULTI = (EXAMPLES / "multi-tier.yaml").read_text()
KNOWN = str(fixture_path("locust", "known.py"))
CHECKLIST_PLAN = str(EXAMPLES / "small.yaml")


@dataclass(frozen=True)
class Case:
    name: str
    category: str
    argv: tuple[str, ...]
    files: dict[str, str | bytes] = field(default_factory=dict)
    code: int = 2
    expect: str = ""  # a substring of stderr, placeholders filled in
    field: str | None = None  # a stderr line "{file}:L:C <field>..." must exist
    forbid: tuple[str, ...] = ()  # must not appear in stdout or stderr
    setup: Callable[[Path], None] | None = None  # gets {d}'s parent: makes FIFOs, links
    xfail: str | None = None  # a known gap: the reason, reported as such by the table


def _small(old: str, new: str) -> str:
    assert SMALL.count(old) == 1, old
    return SMALL.replace(old, new)


def _multi(old: str, new: str) -> str:
    assert MULTI.count(old) == 1, old
    return MULTI.replace(old, new)


PLAN = ("plan", "{d}/plan.yaml", "--profile", "production", "-o", "{out}")


def plan(
    name: str,
    category: str,
    text: str | bytes,
    field_: str | None,
    expect: str = "",
    *,
    forbid: tuple[str, ...] = (),
    code: int = 2,
) -> Case:
    return Case(name, category, PLAN, {"plan.yaml": text}, code, expect, field_, forbid)


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON is YAML), for hostile strings in plan text."""
    import json

    return json.dumps(text)


def _burn(window: str) -> str:
    """small.yaml with one page burn-rate window of `window`'s fields."""
    return SMALL + f"alerting:\n  burn_rate:\n    page:\n      windows:\n        - {{{window}}}\n"


def _server(value: str) -> str:
    return _multi("server_name: cv.example.com", f"server_name: {_q(value)}")


def _endpoint(key: str) -> str:
    return _multi('"GET /api/stats":', f"{_q(key)}:")


def _ttl(key: str) -> str:
    return _multi("stats: 60}", f"stats: 60, {_q(key)}: 5}}")


def _env(key: str, value: str = "x") -> str:
    return _multi("    graceful_shutdown_seconds: 30\n", f"    env: {{{_q(key)}: {_q(value)}}}\n")


def _alerting(key: str, value: str) -> str:
    return MULTI + f"alerting:\n  {key}: {_q(value)}\n"


# fmt: off
NGINX = [
    plan('server-name-include', 'nginx', _server('_; include /etc/passwd; #'), 'server_name'),
    plan('server-name-block', 'nginx', _server('a.com } server { listen 81'), 'server_name'),
    plan('server-name-newline', 'nginx', _server('a.com\nreturn 301 http://evil/;'), 'server_name'),
    plan('server-name-variable', 'nginx', _server('$host'), 'server_name'),
    plan('server-name-empty-label', 'nginx', _server('a..com'), 'server_name'),
    plan('server-name-quote', 'nginx', _server('a.com"'), 'server_name'),
    plan('listen-extra-param', 'nginx', _multi('listen: 0.0.0.0:80', 'listen: 0.0.0.0:80 ssl'), 'profiles.production.listen'),
    plan('tier-header-semicolon', 'nginx', _multi('    tiers:\n', '    tier_header: "X-A;b"\n    tiers:\n'), 'load_balancer.rate_limits.tier_header'),
    plan('body-size-directive', 'nginx', _multi('  algorithm: least_conn\n', '  algorithm: least_conn\n  client_max_body_size: "10m; include /x"\n'), 'load_balancer.client_max_body_size'),
    plan('route-brace', 'nginx', _multi('route: /admin/', 'route: "/admin/ { }"'), 'services.admin.route'),
    plan('health-path-space', 'nginx', _multi('readiness: /health/ready', 'readiness: "/ready; x"'), 'services.api.health.readiness'),
    plan('tier-name-space', 'nginx', _multi('premium: {rps: 200', '"pre mium": {rps: 200'), 'load_balancer.rate_limits.tiers'),
]
# fmt: on

# fmt: off
PROMQL = [
    plan('endpoint-close-matcher', 'promql', _endpoint('GET /api/x"} or vector(1) #'), 'slo.endpoints'),
    plan('endpoint-regex-matcher', 'promql', _endpoint('GET /api/x", job=~".*'), 'slo.endpoints'),
    plan('endpoint-backslash', 'promql', _endpoint('GET /api/x\\'), 'slo.endpoints'),
    plan('endpoint-lower-method', 'promql', _endpoint('get /api/stats'), 'slo.endpoints'),
    plan('endpoint-two-spaces', 'promql', _endpoint('GET  /api/stats'), 'slo.endpoints'),
    plan('endpoint-unknown-method', 'promql', _endpoint('TRACE /api/stats'), 'slo.endpoints'),
    plan('queue-name-quote', 'promql', _multi('name: render', 'name: "render\\""'), 'workers.analysis.queues[1].name'),
    plan('service-name-upper', 'promql', _multi('  admin:\n', '  Admin:\n'), 'services'),
    plan('burn-window-injection', 'promql', _burn('long: "1h]) or vector(1) #", short: 5m, factor: 2'), 'alerting.burn_rate.page.windows[0].long'),
    plan('burn-severity-newline', 'promql', SMALL + 'alerting:\n  burn_rate:\n    ticket: {severity: "t\\n  x: y"}\n', 'alerting.burn_rate.ticket.severity'),
]
# fmt: on

# fmt: off
GO_TEMPLATE = [
    plan('endpoint-action', 'go-template', _endpoint('GET /api/{{ .Labels }}'), 'slo.endpoints'),
    plan('endpoint-open-delim', 'go-template', _endpoint('GET /api/{{'), 'slo.endpoints'),
    plan('endpoint-param-brace', 'go-template', _endpoint('GET /api/{id}}'), 'slo.endpoints'),
    plan('runbook-action', 'go-template', _alerting('runbook_base_url', 'https://r.example/{{ .Value }}'), 'alerting.runbook_base_url'),
    plan('runbook-brace', 'go-template', _alerting('runbook_base_url', 'https://r.example/{'), 'alerting.runbook_base_url'),
]
# fmt: on

# fmt: off
YAML = [
    plan('webhook-line-separator', 'yaml', _alerting('page_webhook_url', 'http://127.0.0.1:9/p\u2028templates: [x]'), 'alerting.page_webhook_url'),
    plan('webhook-next-line', 'yaml', _alerting('ticket_webhook_url', 'http://127.0.0.1:9/t\x85x: y'), 'alerting.ticket_webhook_url'),
    plan('webhook-newline', 'yaml', _alerting('page_webhook_url', 'http://127.0.0.1:9/p\n  x: y'), 'alerting.page_webhook_url'),
    plan('webhook-scheme', 'yaml', _alerting('page_webhook_url', 'javascript:alert(1)'), 'alerting.page_webhook_url'),
    plan('webhook-comment', 'yaml', _alerting('ticket_webhook_url', 'http://127.0.0.1:9/t #x'), 'alerting.ticket_webhook_url'),
    plan('namespace-newline', 'yaml', MULTI.replace('name: cv-platform\n', 'name: cv-platform\nnamespace: "a\\nb: c"\n'), 'namespace'),
    plan('name-colon', 'yaml', MULTI.replace('name: cv-platform\n', 'name: "cv: x"\n'), 'name'),
    plan('image-newline', 'yaml', _multi('image: ghcr.io/acme/cv-admin:2.3.1', 'image: "a:1\\nb: c"'), 'services.admin.image'),
    plan('kubernetes-version-newline', 'yaml', MULTI + 'kubernetes_version: "1.30.0\\n"\n', 'kubernetes_version'),
    plan('cpu-newline', 'yaml', _multi('limits: {cpu: 500m,', 'limits: {cpu: "500m\\n",'), 'services.admin.resources.limits.cpu'),
    plan('memory-comment', 'yaml', _multi('memory: 512Mi}', 'memory: "512Mi #"}'), 'services.admin.resources.requests.memory'),
    plan('worker-command-newline', 'yaml', _multi('    processes: 2\n', '    processes: 2\n    command: [celery, "worker\\n  - --evil"]\n'), 'workers.analysis.command[1]'),
    plan('worker-command-nul', 'yaml', _multi('    processes: 2\n', '    processes: 2\n    command: ["celery\\0", worker]\n'), 'workers.analysis.command[0]'),
    plan('worker-command-line-separator', 'yaml', _multi('    processes: 2\n', '    processes: 2\n    command: ["celery\\u2028x: y"]\n'), 'workers.analysis.command[0]'),
    plan('worker-command-shell-string', 'yaml', _multi('    processes: 2\n', '    processes: 2\n    command: "celery worker; rm -rf /"\n'), 'workers.analysis.command'),
    plan('python-tag-inert', 'yaml', MULTI + 'x: !!python/object/apply:os.system [id]\n', 'x', 'unknown key'),
]
# fmt: on

# fmt: off
JSON = [
    plan('plan-name-quote', 'json', MULTI.replace('name: cv-platform\n', 'name: "cv\\", \\"x"\n'), 'name'),
    plan('service-name-quote', 'json', _multi('  admin:\n', '  "ad\\"min":\n'), 'services'),
    plan('worker-name-brace', 'json', _multi('  analysis:\n', '  "analysis}":\n'), 'workers'),
]
# fmt: on

# fmt: off
COMPOSE_ENV = [
    plan('env-key-newline', 'compose-env', _env('A:\n  B'), 'services.api.env'),
    plan('env-key-equals', 'compose-env', _env('A=B'), 'services.api.env'),
    plan('env-key-digit', 'compose-env', _env('1A'), 'services.api.env'),
    plan('env-key-dollar', 'compose-env', _env('${HOME}'), 'services.api.env'),
    plan('ttl-key-newline', 'compose-env', _ttl('x:\n      EVIL: "1"'), 'cache.ttl_seconds'),
    plan('ttl-key-dash', 'compose-env', _ttl('a-b'), 'cache.ttl_seconds'),
    plan('ttl-key-upper', 'compose-env', _ttl('Stats'), 'cache.ttl_seconds'),
]
# fmt: on


def _rendered(base: Path) -> None:
    """A first render in {out}, as a pull request could commit it."""
    from scalectl.cli import run

    (base / "in").mkdir(exist_ok=True)
    (base / "in" / "plan.yaml").write_text(SMALL)
    with open(os.devnull, "w") as sink:
        plan_argv = ["plan", str(base / "in" / "plan.yaml"), "-o", str(base / "out")]
        assert run(plan_argv, stdout=sink, stderr=sink) == 0


def _link_file(base: Path) -> None:
    _rendered(base)
    (base / "out" / "sizing.json").unlink()
    (base / "out" / "sizing.json").symlink_to(base / "s" / "victim.txt")


def _link_dir(base: Path) -> None:
    _rendered(base)
    nginx = base / "out" / "nginx"
    for child in nginx.iterdir():
        child.unlink()
    nginx.rmdir()
    nginx.symlink_to(base / "s", target_is_directory=True)


def _link_manifest(base: Path) -> None:
    _rendered(base)
    (base / "out" / ".scalectl-manifest.json").unlink()
    (base / "out" / ".scalectl-manifest.json").symlink_to(base / "s" / "victim.txt")


def _out_is_link(base: Path) -> None:
    (base / "in").mkdir(exist_ok=True)
    (base / "in" / "plan.yaml").write_text(SMALL)
    (base / "out").symlink_to(base / "s", target_is_directory=True)


def _out_is_file(base: Path) -> None:
    (base / "in").mkdir(exist_ok=True)
    (base / "in" / "plan.yaml").write_text(SMALL)
    (base / "out").write_text("a file\n")


SMALL_PLAN = ("plan", "{d}/plan.yaml", "-o", "{out}")
# fmt: off
OUTPUT = [
    Case('out-file-symlink', 'output', SMALL_PLAN, code=2, expect='sizing.json: is a symlink', setup=_link_file),
    Case('out-dir-symlink', 'output', SMALL_PLAN, code=2, expect='nginx: is a symlink', setup=_link_dir),
    Case('out-manifest-symlink', 'output', SMALL_PLAN, code=2, expect='manifest.json: is a symlink', setup=_link_manifest),
    Case('out-diff-file-symlink', 'output', (*SMALL_PLAN, '--diff'), code=2, expect='is a symlink', setup=_link_file, forbid=('do not print',)),
    Case('out-is-symlink', 'output', SMALL_PLAN, code=2, expect='output path is a symlink', setup=_out_is_link),
    Case('out-is-file', 'output', SMALL_PLAN, code=2, expect='{out}', setup=_out_is_file),
]
# fmt: on


def _fifo(base: Path) -> None:
    (base / "in").mkdir(exist_ok=True)
    os.mkfifo(base / "in" / "plan.yaml")


BOMB = "\n".join(
    ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
)
MERGE_BOMB = "\n".join(
    ["m0: &m0 {k0: 1}"]
    + [f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}], k{i}: 1}}" for i in range(1, 120)]
)

# fmt: off
EXHAUSTION = [
    plan('alias-bomb', 'exhaustion', SMALL + 'bomb:\n' + ''.join(f'  {x}\n' for x in BOMB.splitlines()), None, 'more than'),
    plan('merge-key-bomb', 'exhaustion', SMALL + 'bomb:\n' + ''.join(f'  {x}\n' for x in MERGE_BOMB.splitlines()), None, 'more than 100 aliases'),
    plan('recursive-alias', 'exhaustion', SMALL + 'loop: &loop [*loop]\n', None, 'nested deeper'),
    plan('deep-list', 'exhaustion', SMALL + 'deep: ' + '[' * 10000 + ']' * 10000 + '\n', None, 'nest'),
    plan('deep-mapping', 'exhaustion', SMALL + 'deep: ' + '{a: ' * 200 + '1' + '}' * 200 + '\n', None, 'nest'),
    plan('long-integer', 'exhaustion', _small('port: 8000', 'port: ' + '9' * 5000), 'services.web.port', 'number longer than'),
    plan('long-float', 'exhaustion', _small('peak_rps: 60', 'peak_rps: 1.' + '1' * 5000), 'services.web.traffic.peak_rps', 'number longer than'),
    plan('many-values', 'exhaustion', SMALL + 'many: [' + '0,' * 100001 + ']\n', None, 'more than 100000 values'),
    plan('oversize-file', 'exhaustion', SMALL + '#' * (1024 * 1024) + '\n', None, 'byte limit'),
    plan('long-key', 'exhaustion', SMALL + 'k' * 500000 + ': 1\n', None, 'malformed YAML', forbid=('k' * 1000,)),
    plan('long-explicit-key', 'exhaustion', SMALL + '? ' + 'k' * 500000 + '\n: 1\n', None, '...(+499940 characters): unknown key', forbid=('k' * 1000,)),
    plan('not-utf8', 'exhaustion', SMALL.encode() + b'\xff\xfe\n', None, 'not UTF-8'),
    plan('empty-file', 'exhaustion', '', None, 'plan.yaml'),
    Case('fifo-plan', 'exhaustion', PLAN, code=2, expect='not a regular file', setup=_fifo),
    Case('dev-zero', 'exhaustion', ('plan', '/dev/zero', '-o', '{out}'), code=2, expect='not a regular file'),
    Case('directory-plan', 'exhaustion', ('plan', '{d}', '-o', '{out}'), code=2, expect='is a directory'),
    Case('missing-plan', 'exhaustion', ('plan', '{d}/nope.yaml', '-o', '{out}'), code=2, expect='no such file'),
]
# fmt: on

# fmt: off
NUMBERS = [
    plan('inf-peak', 'numbers', _small('peak_rps: 60', 'peak_rps: .inf'), 'services.web.traffic.peak_rps'),
    plan('minus-inf-latency', 'numbers', _small('mean_latency_ms: 35', 'mean_latency_ms: -.inf'), 'services.web.capacity.mean_latency_ms'),
    plan('nan-headroom', 'numbers', _small('headroom: 1.5', 'headroom: .NaN'), 'services.web.traffic.headroom'),
    plan('float-overflow', 'numbers', _small('per_replica_rps: 120', 'per_replica_rps: 1e400'), 'services.web.capacity.per_replica_rps'),
    plan('port-too-big', 'numbers', _small('port: 8000', 'port: 65536'), 'services.web.port'),
    plan('port-negative', 'numbers', _small('port: 8000', 'port: -1'), 'services.web.port'),
    plan('port-float', 'numbers', _small('port: 8000', 'port: 80.5'), 'services.web.port'),
    plan('port-string', 'numbers', _small('port: 8000', "port: '8000; x'"), 'services.web.port'),
    plan('replicas-huge', 'numbers', _small('max: 4}', 'max: 1000000000}'), 'services.web.replicas.max'),
    plan('replicas-zero', 'numbers', _small('min: 2, max: 4', 'min: 0, max: 4'), 'services.web.replicas.min'),
    plan('cores-huge', 'numbers', _small('cores: 2,', 'cores: 100000,'), 'database.primary.cores'),
    plan('keys-huge', 'numbers', _small('keys: 50000', 'keys: 10000000000000'), 'cache.keys'),
    plan('availability-one', 'numbers', _small('target: 0.995', 'target: 1'), 'slo.availability.target'),
    plan('error-rate-negative', 'numbers', _small('error_rate: 0.02', 'error_rate: -0.1'), 'slo.error_rate'),
    plan('rps-inf-rate-limit', 'numbers', _small('per_ip: {rps: 10,', 'per_ip: {rps: .inf,'), 'load_balancer.rate_limits.per_ip.rps'),
    plan('burn-factor-inf', 'numbers', _burn('long: 1h, short: 5m, factor: .inf'), 'alerting.burn_rate.page.windows[0].factor'),
    plan('burn-factor-unreachable', 'numbers', _burn('long: 1h, short: 5m, factor: 200'), 'alerting.burn_rate.page.windows[0].factor', 'could never fire'),
    plan('burn-budget-percent-zero', 'numbers', _burn('long: 1h, short: 5m, budget_percent: 0'), 'alerting.burn_rate.page.windows[0].budget_percent'),
    plan('burn-short-not-shorter', 'numbers', _burn('long: 5m, short: 1h, factor: 2'), 'alerting.burn_rate.page.windows[0].short'),
    plan('burn-long-past-period', 'numbers', _burn('long: 999d, short: 1h, factor: 2'), 'alerting.burn_rate.page.windows[0].long'),
    plan('infeasible-replicas', 'numbers', _small('peak_rps: 60', 'peak_rps: 100000'), None, 'infeasible', code=1),
]
# fmt: on

HOSTILE_KEY = "bogus\nerror: fake line \x1b[31mred\u202e\u2028"
# fmt: off
MESSAGES = [
    plan('unknown-key-newline', 'messages', SMALL + f'{_q(HOSTILE_KEY)}: 1\n', None, 'bogus\\nerror: fake line \\x1b[31mred\\u202e\\u2028: unknown key', forbid=('\nerror: fake', '\x1b', '\u202e', '\u2028')),
    plan('nested-key-ansi', 'messages', _small('    autoscaling:', f"    {_q(chr(27) + '[2J')}: 1\n    autoscaling:"), 'services.web.\\x1b[2J', forbid=('\x1b',)),
    plan('duplicate-key-bidi', 'messages', SMALL + '"a\\u202eb": 1\n"a\\u202eb": 2\n', None, 'a\\u202eb: duplicate key', forbid=('\u202e',)),
    plan('env-key-c1', 'messages', _small('    autoscaling:', '    env: {"A\\x9bB": x}\n    autoscaling:'), 'services.web.env', forbid=('\x9b',)),
    plan('warmup-control', 'messages', _small('error_rate: 0.02', 'error_rate: 0.02\n  warmup: "\\x1b[5m"'), 'slo.warmup', forbid=('\x1b',)),
    Case('profile-arg-newline', 'messages', ('plan', '{d}/plan.yaml', '--profile', 'x\nerror: fake', '-o', '{out}'), {'plan.yaml': SMALL}, 2, "no profile named 'x\\nerror: fake'", forbid=('\nerror: fake',)),
]
# fmt: on


def _checks(items: str) -> str:
    """An SLO file whose one endpoint has these checks (a YAML flow sequence's items)."""
    return f"version: 1\nendpoints:\n  GET /known:\n    checks: [{items}]\n"


SLO = ("loadtest", KNOWN, "-H", "http://127.0.0.1:9", "-t", "3s", "--slo", "{d}/slo.yaml")
# fmt: off
SLO_FILES = [
    Case('slo-inf', 'slo', SLO, {'slo.yaml': 'version: 1\nglobal: {p95_ms: .inf}\n'}, 2, 'must be a finite number', 'global.p95_ms'),
    Case('slo-unknown-key', 'slo', SLO, {'slo.yaml': 'version: 1\nglobl: {p95_ms: 300}\n'}, 2, 'unknown key', 'globl'),
    Case('slo-error-rate', 'slo', SLO, {'slo.yaml': 'version: 1\nglobal: {error_rate: 2}\n'}, 2, '', 'global.error_rate'),
    Case('slo-version', 'slo', SLO, {'slo.yaml': 'version: 99\nglobal: {p95_ms: 300}\n'}, 2, '', 'version'),
    Case('slo-list', 'slo', SLO, {'slo.yaml': '- 1\n- 2\n'}, 2, 'slo.yaml'),
    Case('slo-deep', 'slo', SLO, {'slo.yaml': 'a: ' + '[' * 100 + ']' * 100 + '\n'}, 2, 'nested deeper'),
    Case('slo-bad-warmup', 'slo', SLO, {'slo.yaml': 'version: 1\nwarmup: soon\n'}, 2, '', 'warmup'),
    Case('slo-endpoint-newline', 'slo', SLO, {'slo.yaml': 'version: 1\nendpoints:\n  "GET /x\\nerror: fake": {p95_ms: .nan}\n'}, 2, 'must be a finite number', forbid=('\nerror: fake',)),
    Case('slo-check-two-subjects', 'slo', SLO, {'slo.yaml': _checks('{status: 200, json: a, exists: true}')}, 2, "exactly one of 'status'", 'checks[0]'),
    Case('slo-check-no-test', 'slo', SLO, {'slo.yaml': _checks('{json: items.0.id}')}, 2, 'takes exactly one of', 'checks[0]'),
    Case('slo-check-status-range', 'slo', SLO, {'slo.yaml': _checks('{status: 600}')}, 2, 'a status is a code', 'checks[0].status'),
    Case('slo-check-status-bool', 'slo', SLO, {'slo.yaml': _checks('{status: [true]}')}, 2, 'a status is a code', 'checks[0].status'),
    Case('slo-check-statuses-many', 'slo', SLO, {'slo.yaml': _checks('{status: [' + ', '.join(['200'] * 11) + ']}')}, 2, 'give 1 to 10', 'checks[0].status'),
    Case('slo-check-path-empty-part', 'slo', SLO, {'slo.yaml': _checks('{json: "items..id", exists: true}')}, 2, 'non-empty keys', 'checks[0].json'),
    Case('slo-check-path-deep', 'slo', SLO, {'slo.yaml': _checks('{json: "' + '.'.join('a' * 17) + '", exists: true}')}, 2, 'non-empty keys', 'checks[0].json'),
    Case('slo-check-header-newline', 'slo', SLO, {'slo.yaml': _checks('{header: "X\\nerror: fake", exists: true}')}, 2, 'not an HTTP header name', 'checks[0].header', forbid=('\nerror: fake',)),
    Case('slo-check-equals-mapping', 'slo', SLO, {'slo.yaml': _checks('{json: a, equals: {b: 1}}')}, 2, 'not a list or mapping', 'checks[0].equals'),
    Case('slo-check-equals-nan', 'slo', SLO, {'slo.yaml': _checks('{json: a, equals: .nan}')}, 2, 'finite number', 'checks[0].equals'),
    Case('slo-check-contains-huge', 'slo', SLO, {'slo.yaml': _checks('{header: X, contains: "' + 'x' * 100_000 + '"}')}, 2, 'at most 200 characters', 'checks[0].contains'),
    Case('slo-check-regex', 'slo', SLO, {'slo.yaml': _checks('{json: a, matches: "(a+)+$"}')}, 2, 'unknown key', 'checks[0].matches'),
    Case('slo-checks-too-many', 'slo', SLO, {'slo.yaml': _checks(', '.join(['{status: 200}'] * 21))}, 2, 'at most 20 items', 'checks'),
    Case('slo-group-status-word', 'slo', SLO, {'slo.yaml': 'version: 1\ngroups:\n  g: {match: "*", status: ok, p95_ms: 1}\n'}, 2, 'a status is a code', 'groups.g.status'),
    Case('slo-group-tag-huge', 'slo', SLO, {'slo.yaml': 'version: 1\ngroups:\n  g: {match: "*", tag: "' + 't' * 100_000 + '", p95_ms: 1}\n'}, 2, 'at most 200 characters', 'groups.g.tag'),
    Case('slo-group-tag-list', 'slo', SLO, {'slo.yaml': 'version: 1\ngroups:\n  g: {match: "*", tag: [a, b], p95_ms: 1}\n'}, 2, 'valid string', 'groups.g.tag'),
    Case('slo-checks-rate-alone', 'slo', SLO, {'slo.yaml': 'version: 1\nglobal: {checks_rate: 0.9}\n'}, 2, "declares 'checks'", 'global.checks_rate'),
]
# fmt: on

HEALTH = ("health", "-c", "{d}/health.yaml")
# fmt: off
HEALTH_CONFIGS = [
    Case('health-timeout-inf', 'health', HEALTH, {'health.yaml': 'version: 1\ndefaults: {timeout: .inf}\nendpoints: [{path: /health}]\n'}, 2, 'must be a finite number', 'defaults.timeout'),
    Case('health-unknown-key', 'health', HEALTH, {'health.yaml': 'version: 1\nendpoints: [{path: /health, bogus: 1}]\n'}, 2, 'unknown key', 'endpoints[0].bogus'),
    Case('health-no-endpoints', 'health', HEALTH, {'health.yaml': 'version: 1\nendpoints: []\n'}, 2, '', 'endpoints'),
    Case('health-threshold', 'health', HEALTH, {'health.yaml': 'version: 1\ndefaults: {failure_threshold: 100000}\nendpoints: [{path: /h}]\n'}, 2, '', 'defaults.failure_threshold'),
    Case('health-header-newline', 'health', HEALTH, {'health.yaml': 'version: 1\nendpoints: [{url: "http://127.0.0.1:9/h", headers: {X: "a\\r\\nHost: evil"}}]\n'}, 2, 'line breaks'),
    Case('health-alias-bomb', 'health', HEALTH, {'health.yaml': 'version: 1\n' + BOMB + '\nendpoints: [{path: /h}]\n'}, 2, 'more than'),
]
# fmt: on

CONDITION = ("health", "-c", "{d}/health.yaml", "-C")
ONE_ENDPOINT = {"health.yaml": "version: 1\nendpoints: [{url: 'http://127.0.0.1:9/h'}]\n"}
# fmt: off
CONDITIONS = [
    Case('condition-parens-3000', 'condition', (*CONDITION, '(' * 3000 + '[STATUS] == 200' + ')' * 3000), ONE_ENDPOINT, 2, '--condition'),
    Case('condition-operator', 'condition', (*CONDITION, '[STATUS] =! 200'), ONE_ENDPOINT, 2, 'unknown operator'),
    Case('condition-unbalanced', 'condition', (*CONDITION, '([STATUS] == 200'), ONE_ENDPOINT, 2, '--condition'),
    Case('condition-unknown-field', 'condition', (*CONDITION, '[PASSWORD] == 1'), ONE_ENDPOINT, 2, '--condition'),
    Case('condition-newline', 'condition', (*CONDITION, '[STATUS] == 200\nerror: fake'), ONE_ENDPOINT, 2, '--condition', forbid=('\nerror: fake',)),
    Case('condition-empty', 'condition', (*CONDITION, ''), ONE_ENDPOINT, 2, '--condition'),
]
# fmt: on

LOADTEST = ("loadtest", KNOWN, "-t", "3s", "-H")
HOSTS = [
    ("octal-loopback-short", "http://0x7f.1/"),
    ("ipv4-mapped-loopback", "http://[::ffff:127.0.0.1]/"),
    ("ipv4-mapped-remote", "http://[::ffff:1.1.1.1]:80/"),
    ("unspecified-v4", "http://0.0.0.0:80/"),
    ("unspecified-v6", "http://[::]:80/"),
    ("userinfo-password", "http://user:pass@127.0.0.1:9/"),
    ("octal-dotted", "http://0177.0.0.1/"),
    ("percent-encoded-host", "http://%31%32%37.0.0.1/"),
    ("ftp-scheme", "ftp://127.0.0.1/"),
    ("no-host", "http:///x"),
    ("port-out-of-range", "http://127.0.0.1:99999/"),
    ("newline-in-host", "http://127.0.0.1\n.evil.example/"),
    ("trailing-dot-name", "http://localhost.evil.example./"),
    ("unclosed-ipv6", "http://[::1/"),
]
LOADTEST_ARGS = [
    Case(
        f"host-{name}",
        "loadtest-args",
        (*LOADTEST, url),
        {},
        2,
        "",
        forbid=("loadtest known.py ->",),
    )
    for name, url in HOSTS
] + [
    Case(
        "host-header-crlf",
        "loadtest-args",
        (
            "loadtest",
            KNOWN,
            "-t",
            "3s",
            "-H",
            "http://127.0.0.1:9",
            "--allow-host",
            "evil\nexample",
        ),
        {},
        2,
        "",
    ),
]

ANSWERS = (
    "checklist",
    "pre",
    "--plan",
    CHECKLIST_PLAN,
    "--no-input",
    "--answers",
    "{d}/answers.yaml",
)
# fmt: off
CHECKLIST_ANSWERS = [
    Case('answers-unknown-newline', 'checklist', ANSWERS, {'answers.yaml': '"bogus\\nerror: fake": yes\n'}, 2, "no item 'bogus\\nerror: fake'", forbid=('\nerror: fake',)),
    Case('answers-list', 'checklist', ANSWERS, {'answers.yaml': '- yes\n'}, 2, 'answers.yaml'),
    Case('answers-deep', 'checklist', ANSWERS, {'answers.yaml': 'a: ' + '[' * 100 + ']' * 100 + '\n'}, 2, 'nested deeper'),
    Case('answers-bomb', 'checklist', ANSWERS, {'answers.yaml': BOMB + '\n'}, 2, 'more than'),
    Case('answers-oversize', 'checklist', ANSWERS, {'answers.yaml': '#' * (1024 * 1024 + 1)}, 2, 'byte limit'),
    Case('answers-not-utf8', 'checklist', ANSWERS, {'answers.yaml': b'\xff\xfe: yes\n'}, 2, 'not UTF-8'),
]
# fmt: on

CASES: list[Case] = [
    *NGINX,
    *PROMQL,
    *GO_TEMPLATE,
    *YAML,
    *JSON,
    *COMPOSE_ENV,
    *OUTPUT,
    *EXHAUSTION,
    *NUMBERS,
    *MESSAGES,
    *SLO_FILES,
    *HEALTH_CONFIGS,
    *CONDITIONS,
    *LOADTEST_ARGS,
    *CHECKLIST_ANSWERS,
]

# The hostile cases that live in their own test modules, counted in the table.
EXISTING = {
    "tests/hostile/test_rendered_strings.py": "strings that would inject into rendered files",
    "tests/hostile/test_limits.py": "input limits: plans, SLO files, health configs",
    "tests/hostile/test_output.py": "output confinement: tampered manifests, symlinks",
    "tests/hostile/test_loopback.py": "the loopback check: look-alike hosts, tampered state",
}
