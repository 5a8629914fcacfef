"""Run one drill: steady load in Locust children (the open model, so the rate holds through
the fault), the fault in a thread of its own, health probes in another, and the restore in
a `finally` that runs whatever happens (failure, Ctrl-C, a bug in the drill).

The load is `scenarios/drill.py` (scalectl.drill.traffic); its per-second HDR windows become
the drill's timeline.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scalectl.drill.model import DrillResult, Figure, HealthSample, Second, Timeline
from scalectl.drill.sampler import HealthSampler
from scalectl.drill.traffic import MAX_LOAD_SECONDS, Load, load_config, scenario_environment
from scalectl.errors import ScalectlError
from scalectl.stack.state import StackState

SETTLE_SECONDS = 180  # longest wait for a fault thread to finish once the load stopped


@dataclass
class DrillContext:
    """What a drill's fault and checks may use during one run. Everything it acts on comes
    from `state`; what it acted on (`touched`) is what the restore starts again."""

    state_dir: Path
    state: StackState
    timeline: Timeline
    environ: Mapping[str, str]  # the caller's, with the stack's API keys: for restarts
    locust_env: Mapping[str, str]  # the base environment of every Locust child
    work_dir: Path  # temporary, for acknowledgements and the like
    url: str  # where the load goes
    stopping: threading.Event = field(default_factory=threading.Event)
    figures: list[Figure] = field(default_factory=list)  # measured by the fault itself
    touched: set[str] = field(default_factory=set)  # members the fault acted on
    reasons: list[str] = field(default_factory=list)  # why the verdict is inconclusive

    @property
    def acks_file(self) -> Path:
        """Where the load writes the id of every submission answered 202."""
        return self.work_dir / "acks.txt"

    def touch(self, name: str) -> None:
        """Record that the drill is about to act on the member `name`: only members
        recorded here are ever started again by the restore."""
        self.touched.add(name)

    def wait(self, seconds: float) -> bool:
        """Sleep, but wake when the drill is being stopped; True when stopped."""
        return self.stopping.wait(max(0.0, seconds))


Fault = Callable[[DrillContext], None]
Measure = Callable[[DrillContext, "Measured"], list[Figure]]


def _ready_url(ctx: DrillContext) -> list[str]:
    return [ctx.url + "/health/ready"]


def _balancer_url(state: StackState) -> str:
    return state.urls["app"]


@dataclass(frozen=True)
class Spec:
    """One drill, ready to run once: its fault, restore, figures, load and timing. Built by
    a DrillKind (scalectl.drill.catalog) for each run, since a fault may keep what it saw for
    its measure."""

    name: str
    description: str
    inject: Fault  # marks fault_start and fault_end on ctx.timeline; may block
    restore: Fault  # idempotent: puts the stack back as it was
    measure: Measure
    load: Load = field(default_factory=Load)
    before_seconds: float = 5.0
    after_seconds: float = 10.0
    fault_seconds: float = 0.0  # how long the fault lasts, when it is known up front
    max_seconds: int = MAX_LOAD_SECONDS  # the load stops by itself after this, whatever happens
    probe_urls: Callable[[DrillContext], list[str]] = _ready_url
    url: Callable[[StackState], str] = _balancer_url
    # Runs before the load starts (the restore runs after it whatever happens): what the
    # baseline must already include, e.g. a pass-through proxy in front of a dependency.
    setup: Fault | None = None


@dataclass(frozen=True)
class Measured:
    """The load's view of the drill, per second and in total, with the health samples."""

    seconds: list[Second]
    samples: list[HealthSample]
    errors: dict[str, int]
    endpoints: dict[str, tuple[int, int]]  # key -> requests, failures
    started_at: float
    fault_start: float | None
    fault_end: float | None


def run(
    spec: Spec,
    state_dir: Path,
    state: StackState,
    *,
    environ: Mapping[str, str],
    progress: Callable[[str], None] = lambda _: None,
) -> DrillResult:
    """Run `spec` against the stack in `state_dir` (`state`, its state.json): load, fault,
    restore, figures. `environ` is the caller's environment (the Locust children's comes
    from it: scalectl.drill.traffic.scenario_environment).

    Returns the DrillResult, with its verdict (interrupted when Ctrl-C stopped the load).
    Raises InputError when the stack's URL is not loopback or Locust could not run, and
    the fault's own error (a ScalectlError, reworded to name the drill) after the restore
    when the fault failed; the restore runs in every case."""
    from scalectl.loadtest import runner
    from scalectl.loadtest.target import check_host
    from scalectl.stack import apikeys

    timeline = Timeline()
    check_host(spec.url(state), ())  # loopback only, whatever state.json says
    # The stack's API keys for every Locust run of the drill (the load and any surge), and
    # for the members a drill restarts.
    locust_env = scenario_environment(environ, state_dir)
    environ = {**environ, **apikeys.scenario_env(environ, state_dir)}
    with tempfile.TemporaryDirectory(prefix=f"scalectl-drill-{spec.name}-") as tmp:
        ctx = DrillContext(
            state_dir=state_dir,
            state=state,
            timeline=timeline,
            environ=environ,
            locust_env=locust_env,
            work_dir=Path(tmp),
            url=spec.url(state),
        )
        fault = _FaultThread(spec, ctx, progress)
        config = load_config(
            spec.load, ctx.url, spec.max_seconds, locust_env, acks_file=ctx.acks_file
        )
        started = [0.0]

        def on_live(live: dict[str, Any]) -> None:
            started[0] = float(live["started_at"])
            if not fault.started and time.time() - started[0] >= spec.before_seconds:
                fault.start()

        def should_stop() -> bool:
            end = timeline.marks.get("fault_end")
            if fault.error is not None:
                return True
            return end is not None and not fault.alive and time.time() >= end + spec.after_seconds

        progress(f"{spec.name}: load {spec.load.rate:g}/s on {ctx.url}")
        outcome = None
        with _probing(spec.probe_urls(ctx), spec.max_seconds + SETTLE_SECONDS) as sampler:
            try:
                if spec.setup is not None:
                    progress(f"{spec.name}: setting up")
                    spec.setup(ctx)
                outcome = runner.run(config, progress=on_live, should_stop=should_stop)
            finally:
                ctx.stopping.set()
                fault.join(SETTLE_SECONDS)
                progress(f"{spec.name}: restoring")
                spec.restore(ctx)
        if fault.exception is not None:
            message = f"drill {spec.name}: {fault.error} (the stack was restored)"
            if isinstance(fault.exception, ScalectlError):
                fault.exception.message = message
                raise fault.exception
            raise ScalectlError(message)
        results = outcome.results
        measured = _measured(results, sampler.samples, timeline)
        figures = [*ctx.figures, *spec.measure(ctx, measured)]
        if results.open is not None:
            figures.append(
                Figure(
                    "load_dropped",
                    results.open.dropped,
                    "arrivals",
                    detail=f"of {results.open.total_arrivals} sent: arrivals the load could not "
                    "send on time because its users were stuck behind slow answers",
                )
            )
        reasons = list(ctx.reasons)
        before_requests = sum(x.requests for x in measured.seconds if x.phase == "before")
        before_failures = sum(x.failures for x in measured.seconds if x.phase == "before")
        if before_failures:
            reasons.append(
                f"{before_failures} of {before_requests} requests failed before the fault: "
                "the stack was not healthy to begin with"
            )
        if "fault_start" not in timeline.marks:
            reasons.append("the fault never started (the load ended first)")
        if outcome.generator.saturated:
            reasons.append("the load generator was saturated: figures are not trustworthy")
        return DrillResult(
            name=spec.name,
            description=spec.description,
            started_at=results.started_at,
            ended_at=results.ended_at,
            fault_start=timeline.marks.get("fault_start"),
            fault_end=timeline.marks.get("fault_end"),
            figures=figures,
            events=list(timeline.events),
            seconds=measured.seconds,
            samples=measured.samples,
            errors=dict(results.total.errors),
            reasons=reasons,
            interrupted=outcome.interrupted,
        )


class _FaultThread:
    """The fault in a daemon thread: its error is kept for the main thread, which reports
    it after the restore."""

    def __init__(self, spec: Spec, ctx: DrillContext, progress: Callable[[str], None]) -> None:
        self.spec, self.ctx, self.progress = spec, ctx, progress
        self.error: str | None = None
        self.exception: BaseException | None = None
        self.thread: threading.Thread | None = None

    @property
    def started(self) -> bool:
        return self.thread is not None

    @property
    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name=f"drill-{self.spec.name}")
        self.thread.daemon = True
        self.thread.start()

    def _run(self) -> None:
        try:
            self.progress(f"{self.spec.name}: injecting the fault")
            self.spec.inject(self.ctx)
        except Exception as exc:  # reported after the restore, in the main thread
            self.exception = exc
            self.error = (
                exc.message if isinstance(exc, ScalectlError) else f"{type(exc).__name__}: {exc}"
            )
            self.ctx.timeline.note(f"fault failed: {self.error}")
        finally:
            if "fault_end" not in self.ctx.timeline.marks:  # the fault raised before its end
                self.ctx.timeline.mark("fault_end", "fault over (it ended early)")

    def join(self, timeout: float) -> None:
        if self.thread is not None:
            self.thread.join(timeout)


@contextlib.contextmanager
def _probing(urls: list[str], max_seconds: float) -> Iterator[HealthSampler]:
    sampler = HealthSampler(urls, max_seconds)
    sampler.start()
    try:
        yield sampler
    finally:
        sampler.stop()


def _measured(results: Any, samples: list[HealthSample], timeline: Timeline) -> Measured:
    start = timeline.marks.get("fault_start")
    end = timeline.marks.get("fault_end")
    base = math.floor(results.started_at)
    seconds = []
    for w in results.windows:
        at = base + w.t
        if start is None or at + 1 <= start:
            phase = "before"
        elif end is None or at < end:
            phase = "during"
        else:
            phase = "after"
        seconds.append(
            Second(
                t=w.t,
                phase=phase,
                requests=w.requests,
                failures=w.failures,
                p95_ms=w.latency.p95_ms,
                endpoints={
                    k: (req, fail, lat.p95_ms) for k, (req, fail, lat) in w.endpoints.items()
                },
            )
        )
    return Measured(
        seconds=seconds,
        samples=samples,
        errors=dict(results.total.errors),
        endpoints={e.key: (e.requests, e.failures) for e in results.endpoints},
        started_at=results.started_at,
        fault_start=start,
        fault_end=end,
    )
