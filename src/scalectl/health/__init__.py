"""`scalectl health`: probe app instances, the balancer or URLs; judge them by Gatus-style
conditions, application/health+json and /metrics. No typer or rich here.

`probe_stack` is the entry point other commands use (`scalectl checklist`)."""

from __future__ import annotations

from scalectl.health.probe import HealthSummary, Row, probe_stack

__all__ = ["HealthSummary", "Row", "probe_stack"]
