"""The verifier kinds a checklist item can name in `verify: {kind: ...}`."""

from __future__ import annotations

from typing import Any

from scalectl.checklist.verifiers.alerting import ALERT_RULES
from scalectl.checklist.verifiers.backup import BACKUP_RESTORE
from scalectl.checklist.verifiers.base import Context, Params, Verifier
from scalectl.checklist.verifiers.docs import ROLLBACK_DOC
from scalectl.checklist.verifiers.drill import DRILL
from scalectl.checklist.verifiers.health import HEALTH
from scalectl.checklist.verifiers.kubernetes import HPA, ROLLOUT
from scalectl.checklist.verifiers.loadtest import LOADTEST_REPORT
from scalectl.checklist.verifiers.metrics import METRICS_EXPOSED, SLO_LIVE
from scalectl.checklist.verifiers.monitoring import PROMETHEUS
from scalectl.checklist.verifiers.rendered import PLAN_CHECK
from scalectl.checklist.verifiers.shutdown import GRACEFUL_SHUTDOWN

REGISTRY: dict[str, Verifier[Any]] = {
    v.kind: v
    for v in (
        LOADTEST_REPORT,
        PLAN_CHECK,
        HPA,
        ALERT_RULES,
        ROLLOUT,
        HEALTH,
        PROMETHEUS,
        METRICS_EXPOSED,
        SLO_LIVE,
        BACKUP_RESTORE,
        GRACEFUL_SHUTDOWN,
        DRILL,
        ROLLBACK_DOC,
    )
}

__all__ = ["REGISTRY", "Context", "Params", "Verifier"]
